"""The pass manager: optimization levels, the fixed-point loop and its report.

Levels (each includes the one before):

- ``-O0``: nothing.
- ``-O1`` cleanup: trailing empty inputs dropped, shape and type inference (symbolic dim names kept), constant
  folding under a size cap (weights filled in the graph by ConstantOfShape are
  stored whatever their size: :mod:`passes.weight_fills`), no-op removal (Identity, Dropout, same-type Cast,
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

import contextlib
import dataclasses
import gc
import time
import traceback
from collections.abc import Callable, Sequence

import onnx_ir.passes.common as common
from onnxscript.rewriter import RewritePass

import ir
from passes import rules
from passes.folding import FoldConstantsPass
from passes.identity import IdentityEliminationPass
from passes.initializer_inputs import InitializerInputsPass
from passes.parallel_matmul import MergeParallelMatMulsPass
from passes.report import (
    PassFailure,
    PassReport,
    PassStats,
    constant_bytes,
    count_nodes,
    counted_nodes,
)
from passes.rules._dispatch import dispatched
from passes.shape_inference import ShapeInferencePass
from passes.trim_inputs import TrimEmptyInputsPass
from passes.weight_fills import MaterializeWeightFillsPass

MAX_ITERATIONS = 5
DEFAULT_SIZE_CAP_BYTES = 1 << 20
DEDUP_MAX_ELEMENTS = 1 << 20


@dataclasses.dataclass(frozen=True)
class PassSpec:
    """One pipeline entry: a name for the report, its kind, and how to build the pass.

    ``make(model, options)`` returns the pass, or ``None`` when it does not apply
    to this model (e.g. a fusion whose op the model's opset lacks). A ``once``
    pass runs in the first round of the fixed-point loop only.
    """

    name: str
    kind: str  # "fold", "fuse" or "cleanup": how its node reduction is reported
    make: Callable[[ir.Model, dict], ir.passes.PassBase | None]
    once: bool = False


class PassError(RuntimeError):
    """A pass raised or broke the model; the model was restored to its state before the run.

    Attributes:
        pass_name: the pipeline entry that failed.
        node: the name (or ``op_type``) of the node it was working on, when known.
    """

    def __init__(self, pass_name: str, node: str | None, message: str) -> None:
        self.pass_name = pass_name
        self.node = node
        where = f" at node {node!r}" if node else ""
        super().__init__(f"pass {pass_name!r} failed{where}: {message}")


class PassVerificationError(PassError, ValueError):
    """``ir.verify`` failed after a pass; ``pass_name`` says which one (``"input"``: before any)."""

    def __init__(self, pass_name: str, cause: Exception, node: str | None = None) -> None:
        super().__init__(pass_name, node, f"the model fails verification:\n{cause}")


def _fold(model: ir.Model, options: dict) -> ir.passes.PassBase:
    # onnxscript's limits count elements; the cap is in bytes of float32 elements.
    limit = max(1, options["size_cap_bytes"] // 4)
    return FoldConstantsPass(size_limit=limit)


def _rewrite(rule_set: Callable[[ir.Model], list]) -> Callable:
    def make(model: ir.Model, options: dict) -> ir.passes.PassBase | None:
        chosen = rule_set(model)
        return RewritePass(dispatched(chosen)) if chosen else None

    return make


def _fixed(pass_type: type, **kwargs) -> Callable:
    return lambda model, options: pass_type(**kwargs)


CLEANUP: tuple[PassSpec, ...] = (
    PassSpec("initializer-inputs", "cleanup", _fixed(InitializerInputsPass), once=True),
    PassSpec("trim-empty-inputs", "cleanup", _fixed(TrimEmptyInputsPass)),
    # Whole-graph inference once; later rounds rely on fold-constants' per-node
    # inference, which types what the rules create (see passes.folding).
    PassSpec("shape-inference", "cleanup", _fixed(ShapeInferencePass), once=True),
    PassSpec("fold-constants", "fold", _fold),
    # Before CSE merges equal fills: each weight stays its own, so BatchNorm folds into it.
    PassSpec("materialize-weight-fills", "fold", _fixed(MaterializeWeightFillsPass)),
    PassSpec("fold-shapes", "fold", _rewrite(rules.shape_rules)),
    PassSpec("remove-no-ops", "cleanup", _rewrite(rules.cleanup_rules)),
    PassSpec("eliminate-identity", "cleanup", _fixed(IdentityEliminationPass)),
    PassSpec("remove-unused", "cleanup", _fixed(common.RemoveUnusedNodesPass)),
    PassSpec("remove-unused-functions", "cleanup", _fixed(common.RemoveUnusedFunctionsPass)),
    # Tensors up to 1M elements compared (onnx_ir's default stops at 1024). Its hashed
    # variant has no limit but raises on a non-contiguous tensor (a folded Transpose).
    PassSpec(
        "dedup-initializers",
        "cleanup",
        _fixed(common.DeduplicateInitializersPass, size_limit=DEDUP_MAX_ELEMENTS),
    ),
    PassSpec(
        "lift-constants",
        "cleanup",
        _fixed(common.LiftConstantsToInitializersPass, lift_all_constants=True, size_limit=0),
    ),
)

FUSIONS: tuple[PassSpec, ...] = (
    PassSpec("cse", "fuse", _fixed(common.CommonSubexpressionEliminationPass)),
    PassSpec("fuse-patterns", "fuse", _rewrite(rules.fusion_rules)),
    PassSpec("merge-parallel-matmuls", "fuse", _fixed(MergeParallelMatMulsPass)),
    PassSpec("remove-unused-after-fusion", "cleanup", _fixed(common.RemoveUnusedNodesPass)),
)

#: Merging equal weights and lifting constants come last: a BatchNormalization fold
#: refuses weights shared with other nodes, and equal folded weights (BatchNorm scales
#: of ones) would otherwise be merged before the fusions see them.
_SHARING = ("dedup-initializers", "lift-constants")
_CLEANUP_BEFORE = tuple(p for p in CLEANUP if p.name not in _SHARING)
_CLEANUP_AFTER = tuple(p for p in CLEANUP if p.name in _SHARING)

LEVELS: dict[int, tuple[PassSpec, ...]] = {0: (), 1: CLEANUP, 2: _CLEANUP_BEFORE + FUSIONS + _CLEANUP_AFTER}


def optimize(
    model: ir.Model,
    level: int = 2,
    *,
    verify_each: bool = False,
    size_cap_bytes: int = DEFAULT_SIZE_CAP_BYTES,
    max_iterations: int = MAX_ITERATIONS,
    on_error: str = "skip",
) -> PassReport:
    """Optimize ``model`` in place at ``level`` and report what changed.

    The run is transactional: if a pass raises (or, with ``verify_each``, leaves
    a model ``ir.verify`` rejects), the model is restored to its state before
    this call, and then either the error is raised (``on_error="raise"``) or the
    pipeline runs again without that pass and the failure is recorded in
    ``report.failures`` (``on_error="skip"``, the default).

    Args:
        model: the model; it is modified in place (after a restore,
            ``model.graph`` is a new object: do not hold on to the old one).
        level: 0 (nothing), 1 (cleanup) or 2 (cleanup and fusions).
        verify_each: run ``ir.verify`` on the input and after every pass.
        size_cap_bytes: largest tensor constant folding may create, counted as
            4-byte elements (folding is skipped for bigger results). Weights
            filled by ConstantOfShape are stored whatever their size
            (:mod:`passes.weight_fills`).
        max_iterations: bound on rounds of the fixed-point loop.
        on_error: ``"skip"`` or ``"raise"``, what to do when a pass fails.

    Returns:
        A :class:`PassReport`.

    Raises:
        ValueError: unknown level or ``on_error``.
        PassVerificationError: with ``verify_each``, the input does not verify
            (``pass_name == "input"``; the model is untouched), or, with
            ``on_error="raise"``, a pass left a model that does not.
        PassError: with ``on_error="raise"``, a pass raised; it names the pass
            and the node, and the original exception is its ``__cause__``.

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
        on_error=on_error,
    )


class _PassFailed(Exception):
    """Internal: carries the failing spec and the node out of the fixed-point loop."""

    def __init__(self, spec: PassSpec, node: str | None, cause: Exception) -> None:
        super().__init__(spec.name)
        self.spec, self.node, self.cause = spec, node, cause


def run_passes(
    model: ir.Model,
    specs: Sequence[PassSpec],
    *,
    level: int,
    verify_each: bool = False,
    options: dict | None = None,
    max_iterations: int = MAX_ITERATIONS,
    on_error: str = "skip",
) -> PassReport:
    """Run ``specs`` in order until a round changes nothing; the engine under :func:`optimize`.

    One snapshot (``model.clone()``: nodes and values, tensors shared, so
    linear in graph size and no weight bytes) is taken before the first pass.
    Snapshotting before every pass would make a failure cheaper to undo but
    every run slower, and failures are the rare case; a failure restores the
    snapshot, so the model is never left half-rewritten.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
    options = {"size_cap_bytes": DEFAULT_SIZE_CAP_BYTES, **(options or {})}
    with _gc_paused():
        return _run_passes(model, specs, level, verify_each, options, max_iterations, on_error)


@contextlib.contextmanager
def _gc_paused():
    """Python's cycle collector off for the run, back as it was after.

    The graph is millions of objects in reference cycles (nodes and values
    point at each other), and every collection of the oldest generation walks
    all of them while passes allocate: the pipeline's time grew faster than
    the graph (x15 per decade at 100k nodes) and nearly linearly without it.
    The garbage the run leaves is collected on the next collection after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_passes(
    model: ir.Model,
    specs: Sequence[PassSpec],
    level: int,
    verify_each: bool,
    options: dict,
    max_iterations: int,
    on_error: str,
) -> PassReport:
    start = time.perf_counter()
    report = PassReport(level, count_nodes(model), bytes_before=constant_bytes(model))
    if verify_each:
        _verify(model, "input")
    active = list(specs)
    snapshot = model.clone() if active else None
    while True:
        try:
            report.passes = _run_to_fixed_point(
                model, active, report, options, verify_each, max_iterations
            )
            break
        except _PassFailed as failed:
            _restore(model, snapshot)
            report.failures.append(
                PassFailure(failed.spec.name, failed.node, _describe(failed.cause))
            )
            if on_error == "raise":
                raise _as_pass_error(failed) from failed.cause
            active.remove(failed.spec)
            snapshot = model.clone()
    report.nodes_after = count_nodes(model)
    report.bytes_after = constant_bytes(model)
    report.seconds = time.perf_counter() - start
    return report


def _run_to_fixed_point(
    model: ir.Model,
    specs: Sequence[PassSpec],
    report: PassReport,
    options: dict,
    verify_each: bool,
    max_iterations: int,
) -> list[PassStats]:
    """Rounds of ``specs`` until one changes nothing; raises :class:`_PassFailed`."""
    stats = [PassStats(spec.name, spec.kind) for spec in specs]
    report.iterations = 0
    state = _State.of(model)  # what the next pass starts from: counted once, not twice
    for round_ in range(max_iterations if specs else 0):
        report.iterations += 1
        changed = False
        for spec, stat in zip(specs, stats, strict=True):
            if spec.once and round_:
                continue
            try:
                modified, state = _run_one(model, spec, stat, state, options, verify_each)
            except Exception as error:  # noqa: BLE001  (any failure inside a pass is undone)
                raise _PassFailed(spec, _failing_node(error), error) from error
            changed |= modified
        if not changed:
            break
    return [s for s in stats if s.runs]


@dataclasses.dataclass(frozen=True)
class _State:
    """The counted nodes and constant bytes of the model between two passes."""

    nodes: set[ir.Node]
    nbytes: int

    @classmethod
    def of(cls, model: ir.Model) -> _State:
        return cls(counted_nodes(model), constant_bytes(model))


def _run_one(
    model: ir.Model,
    spec: PassSpec,
    stat: PassStats,
    before: _State,
    options: dict,
    verify_each: bool,
) -> tuple[bool, _State]:
    """Run one pass, add what it did to ``stat``; return whether it modified the model, and the new state."""
    the_pass = spec.make(model, options)
    if the_pass is None:
        return False, before
    tic = time.perf_counter()
    result = the_pass(model)
    stat.seconds += time.perf_counter() - tic
    if result.model is not model:
        raise RuntimeError(f"pass {spec.name!r} is not in place")
    after = _State.of(model)
    if stat.runs == 0:
        stat.nodes_before = len(before.nodes)
    stat.runs += 1
    stat.nodes_after = len(after.nodes)
    stat.nodes_removed += len(before.nodes - after.nodes)
    stat.nodes_added += len(after.nodes - before.nodes)
    stat.bytes_saved += before.nbytes - after.nbytes
    if verify_each:
        ir.verify(model)
    stat.modified_runs += bool(result.modified)
    return bool(result.modified), after


def _verify(model: ir.Model, pass_name: str) -> None:
    try:
        ir.verify(model)
    except ir.VerificationError as error:
        raise PassVerificationError(pass_name, error) from error


def _restore(model: ir.Model, snapshot: ir.Model) -> None:
    """Make ``model`` what ``snapshot`` was, in place (graph, functions, metadata)."""
    copy = snapshot.clone()
    model.graph = copy.graph
    model.functions.clear()
    model.functions.update(copy.functions)
    model.metadata_props.clear()
    model.metadata_props.update(copy.metadata_props)


def _failing_node(error: BaseException) -> str | None:
    """The node a pass was working on when it raised, from the error or its traceback.

    An error may carry ``.node``; otherwise the innermost frame with a local
    ``ir.Node`` (passes and the rewriter loop over ``node``) names it.
    """
    if isinstance(error, ir.VerificationError):
        return None  # its message already shows the bad node and its neighbours
    node = getattr(error, "node", None)
    if not isinstance(node, ir.Node):
        frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
        node = next(
            (v for frame in reversed(frames) for v in frame.f_locals.values()
             if isinstance(v, ir.Node)),
            None,
        )  # fmt: skip
    if node is None:
        return None
    return node.name or node.op_type


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _as_pass_error(failed: _PassFailed) -> PassError:
    if isinstance(failed.cause, ir.VerificationError):
        return PassVerificationError(failed.spec.name, failed.cause, failed.node)
    return PassError(failed.spec.name, failed.node, _describe(failed.cause))
