"""The pass manager: optimization levels, the fixed-point loop and its report.

Levels (each includes the one before):

- ``-O0``: nothing.
- ``-O1`` cleanup: shape and type inference (symbolic dim names kept), constant
  folding under a size cap, no-op removal (Identity, Dropout, same-type Cast,
  same-shape Reshape/Expand, identity Transpose, zero Pad, full Slice, ...),
  dead code and unused initializers, initializer dedup, constants lifted to
  initializers.
- ``-O2`` (default): adds CSE and the fusions of :mod:`passes.rules` (transpose
  cancellation and sinking, view-op chains, Conv/BatchNorm, MatMul+Add -> Gemm,
  scale/bias into Conv/MatMul weights, LayerNormalization and Gelu where the
  model's opset has them).

The level's passes run in order, repeatedly, until a whole round changes
nothing (at most ``max_iterations`` rounds).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import onnx_ir.passes.common as common
from onnxscript.optimizer import _constant_folding
from onnxscript.rewriter import RewritePass

import ir
from passes import rules
from passes.report import PassReport, PassStats, constant_bytes, count_nodes, counted_nodes

MAX_ITERATIONS = 5
DEFAULT_SIZE_CAP_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class PassSpec:
    """One pipeline entry: a name for the report, its kind, and how to build the pass.

    ``make(model, options)`` returns the pass, or ``None`` when it does not apply
    to this model (e.g. a fusion whose op the model's opset lacks).
    """

    name: str
    kind: str  # "fold", "fuse" or "cleanup": how its node reduction is reported
    make: Callable[[ir.Model, dict], ir.passes.PassBase | None]


class PassVerificationError(ValueError):
    """``ir.verify`` failed after a pass; ``pass_name`` says which one."""

    def __init__(self, pass_name: str, cause: Exception) -> None:
        self.pass_name = pass_name
        super().__init__(f"model fails verification after pass {pass_name!r}:\n{cause}")


def _fold(model: ir.Model, options: dict) -> ir.passes.PassBase:
    # onnxscript's limits count elements; the cap is in bytes of float32 elements.
    limit = max(1, options["size_cap_bytes"] // 4)
    return _constant_folding.FoldConstantsPass(
        shape_inference=True, input_size_limit=limit, output_size_limit=limit
    )


def _rewrite(rule_set: Callable[[ir.Model], list]) -> Callable:
    def make(model: ir.Model, options: dict) -> ir.passes.PassBase | None:
        chosen = rule_set(model)
        return RewritePass(chosen) if chosen else None

    return make


def _fixed(pass_type: type, **kwargs) -> Callable:
    return lambda model, options: pass_type(**kwargs)


CLEANUP: tuple[PassSpec, ...] = (
    PassSpec("shape-inference", "cleanup", _fixed(common.ShapeInferencePass)),
    PassSpec("fold-constants", "fold", _fold),
    PassSpec("remove-no-ops", "cleanup", _rewrite(rules.cleanup_rules)),
    PassSpec("eliminate-identity", "cleanup", _fixed(common.IdentityEliminationPass)),
    PassSpec("remove-unused", "cleanup", _fixed(common.RemoveUnusedNodesPass)),
    PassSpec("remove-unused-functions", "cleanup", _fixed(common.RemoveUnusedFunctionsPass)),
    PassSpec("dedup-initializers", "cleanup", _fixed(common.DeduplicateInitializersPass)),
    PassSpec(
        "lift-constants",
        "cleanup",
        _fixed(common.LiftConstantsToInitializersPass, lift_all_constants=True, size_limit=0),
    ),
)

FUSIONS: tuple[PassSpec, ...] = (
    PassSpec("cse", "fuse", _fixed(common.CommonSubexpressionEliminationPass)),
    PassSpec("fuse-patterns", "fuse", _rewrite(rules.fusion_rules)),
    PassSpec("remove-unused-after-fusion", "cleanup", _fixed(common.RemoveUnusedNodesPass)),
)

LEVELS: dict[int, tuple[PassSpec, ...]] = {0: (), 1: CLEANUP, 2: CLEANUP + FUSIONS}


def optimize(
    model: ir.Model,
    level: int = 2,
    *,
    verify_each: bool = False,
    size_cap_bytes: int = DEFAULT_SIZE_CAP_BYTES,
    max_iterations: int = MAX_ITERATIONS,
) -> PassReport:
    """Optimize ``model`` in place at ``level`` and report what changed.

    Args:
        model: the model; it is modified in place.
        level: 0 (nothing), 1 (cleanup) or 2 (cleanup and fusions).
        verify_each: run ``ir.verify`` on the input and after every pass.
        size_cap_bytes: largest tensor constant folding may create, counted as
            4-byte elements (folding is skipped for bigger results).
        max_iterations: bound on rounds of the fixed-point loop.

    Returns:
        A :class:`PassReport`.

    Raises:
        ValueError: unknown level.
        PassVerificationError: with ``verify_each``, the first pass after which
            the model no longer verifies (``"input"`` if it never did).

    Example:
        >>> m = ir.from_onnx_text('''<ir_version: 10, opset_import: ["" : 21]>
        ...     g (float[N] x) => (float[N] y) { t = Identity(x)  y = Relu(t) }''')
        >>> optimize(m).nodes_after
        1
    """
    if level not in LEVELS:
        raise ValueError(f"unknown optimization level {level}; expected one of {sorted(LEVELS)}")
    return run_passes(
        model,
        LEVELS[level],
        level=level,
        verify_each=verify_each,
        options={"size_cap_bytes": size_cap_bytes},
        max_iterations=max_iterations,
    )


def run_passes(
    model: ir.Model,
    specs: Sequence[PassSpec],
    *,
    level: int,
    verify_each: bool = False,
    options: dict | None = None,
    max_iterations: int = MAX_ITERATIONS,
) -> PassReport:
    """Run ``specs`` in order until a round changes nothing; the engine under :func:`optimize`."""
    options = {"size_cap_bytes": DEFAULT_SIZE_CAP_BYTES, **(options or {})}
    start = time.perf_counter()
    report = PassReport(level, count_nodes(model), bytes_before=constant_bytes(model))
    stats = [PassStats(spec.name, spec.kind) for spec in specs]
    if verify_each:
        _verify(model, "input")
    for _ in range(max_iterations if specs else 0):
        report.iterations += 1
        changed = False
        for spec, stat in zip(specs, stats, strict=True):
            changed |= _run_one(model, spec, stat, options, verify_each)
        if not changed:
            break
    report.passes = [s for s in stats if s.runs]
    report.nodes_after = count_nodes(model)
    report.bytes_after = constant_bytes(model)
    report.seconds = time.perf_counter() - start
    return report


def _run_one(
    model: ir.Model, spec: PassSpec, stat: PassStats, options: dict, verify_each: bool
) -> bool:
    """Run one pass, add what it did to ``stat``; return whether it modified the model."""
    the_pass = spec.make(model, options)
    if the_pass is None:
        return False
    before = counted_nodes(model)
    bytes_before = constant_bytes(model)
    tic = time.perf_counter()
    result = the_pass(model)
    stat.seconds += time.perf_counter() - tic
    after = counted_nodes(model)
    if stat.runs == 0:
        stat.nodes_before = len(before)
    stat.runs += 1
    stat.nodes_after = len(after)
    stat.nodes_removed += len(before - after)
    stat.nodes_added += len(after - before)
    stat.bytes_saved += bytes_before - constant_bytes(model)
    if verify_each:
        _verify(model, spec.name)
    if result.model is not model:
        raise RuntimeError(f"pass {spec.name!r} is not in place")
    stat.modified_runs += bool(result.modified)
    return bool(result.modified)


def _verify(model: ir.Model, pass_name: str) -> None:
    try:
        ir.verify(model)
    except ir.VerificationError as error:
        raise PassVerificationError(pass_name, error) from error
