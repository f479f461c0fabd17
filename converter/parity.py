"""Parity: run the source and the converted model on the same inputs and compare outputs.

Each side runs in its own native runtime (onnxruntime for ONNX, ``torch.jit.load``
for TorchScript, the live module or ExportedProgram for PyTorch,
``tf.saved_model.load`` / Keras for TensorFlow); the IR never stands in for a side.
Inputs are seeded random values from a signature (the first side that has one),
with symbolic dims bound to chosen sizes, or the user's arrays.

Per output the report gives max abs / max rel error, the fraction of elements
outside ``atol + rtol * |expected|``, cosine similarity and, for classifier-like
outputs (rank 2, float), top-1 / top-5 agreement. Tolerances default per dtype.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

import ir
from converter import formats
from converter.errors import CrossgraphError, InputError, NotYetSupportedError
from converter.parity_metrics import (
    DEFAULT_TOLERANCES,
    OutputParity,
    compare_output,
    elementwise_errors,
)
from converter.runners import Runner, Signature, open_runner
from converter.visual import progress
from ir.symbols import default_symbol


@dataclasses.dataclass
class ParityReport:
    """The verdict of :func:`validate`: per output metrics, and pass/fail overall."""

    source: str
    converted: str
    device: str
    input_shapes: dict[str, list[int]]
    outputs: list[OutputParity]
    batches: int = 1
    notes: list[str] = dataclasses.field(default_factory=list)
    localization: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return bool(self.outputs) and all(o.passed for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        for out, o in zip(d["outputs"], self.outputs, strict=True):
            out["weakness"] = o.weakness
        return d

    def summary(self) -> str:
        worst = max((o.max_abs_error for o in self.outputs), default=0.0)
        verdict = "PASS" if self.passed else "FAIL"
        text = f"parity {verdict}: {len(self.outputs)} output(s), max abs error {worst:.3g} ({self.device})"
        for note in self.notes:
            text += f"; {note}"
        weak = [f"{o.name} ({o.weakness})" for o in self.outputs if o.weakness]
        if weak:
            text += (f"; weak check: the source's {', '.join(weak)} on these inputs, so a match proves"
                     " little; pass real inputs (--inputs) to test more")
        return text


def validate(
    source: Any,
    converted: Any,
    *,
    inputs: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    device: str = "cpu",
    source_format: str | None = None,
    converted_format: str | None = None,
    sizes: Mapping[str, int] | None = None,
    int_range: tuple[int, int] = (0, 10),
    batches: int = 1,
    seed: int = 0,
    signature: str = "serving_default",
    unsafe_load: bool = False,
    localize: bool = False,
    model: Any = None,
    repro_dir: Any = None,
    spec_inputs: Any = None,
    min_cosine: float | None = None,
) -> ParityReport:
    """Run ``source`` and ``converted`` on the same inputs and compare every output.

    Args:
        source: the original model (path or live object).
        converted: the converted model (path or live object).
        inputs: ``.npz`` path or ``{name: array}`` of user data; else random inputs.
        rtol, atol: override the per-dtype tolerances.
        device: ``"cpu"`` or ``"cuda"``.
        sizes: sizes for symbolic dims (default: ``batch`` 2, others 3).
        int_range: ``[low, high)`` of random integer inputs (e.g. token ids).
        batches: how many random batches to compare.
        unsafe_load: run files that embed code (refused by default, before anything runs).
        localize: on a mismatch, run the IR on crossgraph's kernels against onnxruntime
            node by node and name the first divergent node (``report.localization``).
        model: the IR model (after conversion): its signature is used when neither side
            records one, and localization runs in it (default: whichever side is ONNX).
        spec_inputs: input specs or example inputs for loading the source when only the
            IR can tell the input shapes (live modules, TorchScript).
        min_cosine: for reduced-precision results (fp16 / int8 weights): an output
            also passes when its cosine similarity to the source is at least this
            (and, for classifier-like outputs, top-1 agrees everywhere).
        repro_dir: where localization writes the divergent node's repro model.

    Returns:
        A :class:`ParityReport`; ``report.passed`` is the verdict.

    Raises:
        InputError: the models cannot be run (no signature, mismatched inputs).
        NotYetSupportedError: a side's format has no runner yet.

    Example:
        >>> report = validate("model.onnx", "model.pt")   # doctest: +SKIP
        >>> report.passed
        True
    """
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}", "use cpu or cuda")
    if device == "cuda":
        _require_cuda()
    from converter import safety

    for obj, fmt in ((source, source_format), (converted, converted_format)):
        safety.check_source(obj, formats.detect_source(obj, fmt), unsafe_load=unsafe_load)
    src = open_runner(source, source_format, device=device, signature=signature, unsafe_load=unsafe_load,
                      examples=spec_inputs)
    dst = None
    signature = src.signature()
    if signature is not None and model is not None:
        signature = _refined(signature, ir_signature(model))
    if signature is None and model is not None:
        signature = ir_signature(model)  # the IR keeps the source's input order
    if signature is None and (src.named_inputs or formats.detect_source(converted, converted_format) == "onnx"):
        dst = open_runner(converted, converted_format, device=device, unsafe_load=unsafe_load)
        signature = dst.signature()  # fed by name, or an ONNX graph that keeps the source's order
    if signature is None:
        # A positional source (live module, TorchScript, .pt2) and a result that reorders
        # its inputs (SavedModel, TFLite): the IR gives the source's order and shapes.
        from converter import api

        model = api.load(source, format=source_format, inputs=spec_inputs, unsafe_load=unsafe_load)
        signature = ir_signature(model)
    if inputs is not None:
        all_feeds = [_user_inputs(inputs)]
    else:
        sizes = sizes_within_ranges(model, sizes)
        all_feeds = [make_inputs(signature, sizes, int_range, seed + b) for b in range(batches)]
    first_feeds = all_feeds[0]
    feeds_shapes = {k: list(np.shape(v)) for k, v in all_feeds[-1].items()}
    notes: list[str] = []
    results: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    with progress.stage("checking parity", total=len(all_feeds)) as bar:
        # One side at a time: the source's outputs are kept and its runtime released before
        # the converted model loads, so two copies of large weights never meet in memory.
        expected = [_run_side(src, feeds, source, "source") for feeds in all_feeds]
        notes.append(src.note)
        src = None
        if _weighty(source) or _weighty(converted):
            _release_memory()
        if dst is None:
            dst = open_runner(converted, converted_format, device=device, unsafe_load=unsafe_load)
        for feeds, outs in zip(all_feeds, expected, strict=True):
            actual = _run_side(dst, feeds, converted, "converted")
            for name, (e, a) in _pair_outputs(outs, actual).items():
                results.setdefault(name, []).append((e, a))
            bar.advance()
        notes.append(dst.note)
        dst = None
        if _weighty(source) or _weighty(converted):
            _release_memory()
    low = lowest_float_precision(model) if model is not None else None
    outputs = [compare_output(name, pairs, rtol, atol, computed_in=low) for name, pairs in results.items()]
    if min_cosine is not None:
        for o in outputs:
            if not o.passed and o.cosine_similarity is not None and o.cosine_similarity >= min_cosine \
                    and o.top1_agreement in (None, 1.0):
                o.passed = True
                o.note = f"passes by cosine >= {min_cosine}"
    report = ParityReport(formats.describe(source), formats.describe(converted), device, feeds_shapes, outputs, batches)
    report.notes = [n for n in notes if n]
    if min_cosine is not None:
        report.notes.append(f"reduced precision: outputs pass at cosine >= {min_cosine} with top-1 agreement")
    if localize and not report.passed:
        report.localization = _localize(model, source, source_format, converted, converted_format, first_feeds,
                                        device, rtol, atol, repro_dir, unsafe_load, spec_inputs)
    return report


def _localize(model: Any, source: Any, source_format: str | None, converted: Any, converted_format: str | None,
              feeds: dict[str, np.ndarray], device: str, rtol: float | None, atol: float | None,
              repro_dir: Any, unsafe_load: bool = False, spec_inputs: Any = None) -> dict[str, Any]:
    """First against the source (a fault in the converted graph), then kernels vs onnxruntime (a kernel fault)."""
    from converter.localize import localize

    between = _localize_against_source(source, source_format, converted, converted_format, feeds,
                                       rtol, atol, repro_dir, unsafe_load, spec_inputs)
    if between is not None and between.first is not None:
        return {**between.to_dict(), "summary": between.summary()}

    if model is None:
        for obj, fmt in ((source, source_format), (converted, converted_format)):
            if formats.detect_source(obj, fmt) == "onnx":
                from converter.frontends.onnx import load

                model = load(obj)
                break
    if model is None:
        return {"error": "localization needs the IR model: give model=, or one side in ONNX"}
    import pathlib

    result = localize(model, feeds, device=device, rtol=1e-4 if rtol is None else rtol,
                      atol=1e-5 if atol is None else atol,
                      repro_dir=pathlib.Path(repro_dir) if repro_dir is not None else None)
    return {**result.to_dict(), "summary": result.summary()}


def _localize_against_source(source: Any, source_format: str | None, converted: Any, converted_format: str | None,
                             feeds: dict[str, np.ndarray], rtol: float | None, atol: float | None, repro_dir: Any,
                             unsafe_load: bool, spec_inputs: Any) -> Any:
    """:func:`converter.localize.localize_between` when both sides load into the IR; else ``None``."""
    from converter import api
    from converter.localize import localize_between

    try:
        source_model = api.load(source, format=source_format, inputs=spec_inputs, unsafe_load=unsafe_load)
        converted_model = api.load(converted, format=converted_format, unsafe_load=unsafe_load)
        return localize_between(source_model, converted_model, feeds, rtol=1e-4 if rtol is None else rtol,
                                atol=1e-5 if atol is None else atol,
                                repro_dir=pathlib.Path(repro_dir) if repro_dir is not None else None)
    except (CrossgraphError, ValueError):
        return None  # a side the IR cannot read, or inputs that do not line up: kernels vs onnxruntime only


#: Models whose weights pass this many bytes get a garbage collection between the two sides.
_RELEASE_ABOVE = 256 * 2**20


def _weighty(obj: Any) -> bool:
    """Whether ``obj`` (a path or a live model) holds more than :data:`_RELEASE_ABOVE` bytes of weights.

    A full collection costs up to seconds in a process holding many objects (a
    long pytest worker, a notebook): paid only where it returns real memory.
    """
    try:
        if isinstance(obj, str | os.PathLike):
            path = pathlib.Path(obj)
            # a directory (SavedModel), or a file and its siblings named after it (external data)
            files = path.rglob("*") if path.is_dir() else path.parent.glob(f"{glob.escape(path.stem)}*")
            return sum(f.stat().st_size for f in files if f.is_file()) > _RELEASE_ABOVE
        tensors = obj.state_dict().values() if hasattr(obj, "state_dict") else getattr(obj, "weights", [])
        return sum(int(np.prod(t.shape)) * 4 for t in tensors) > _RELEASE_ABOVE
    except Exception:  # noqa: BLE001 - an unknown object: no collection, as before this check
        return False


def _release_memory() -> None:
    """Collect a released runtime now (sessions and modules sit in reference cycles), returning
    its weights' memory before the next one loads."""
    import gc

    gc.collect()


def _run_side(runner: Runner, feeds: dict[str, np.ndarray], obj: Any, role: str) -> dict[str, np.ndarray]:
    try:
        return runner.run(feeds)
    except CrossgraphError:
        raise
    except Exception as e:
        text = " ".join(str(e).split())
        reason = text[-300:] if len(text) > 300 else text
        shapes = ", ".join(f"{k}{list(np.shape(v))}" for k, v in feeds.items())
        raise InputError(
            f"the {role} model {formats.describe(obj)} failed to run on inputs {shapes}: {type(e).__name__}: {reason}",
            "check that both models take the same inputs (names, shapes, dtypes)",
        ) from None


def _refined(signature: Signature, known: Signature) -> Signature:
    """``signature`` (a runtime's view of the source) with the dims it leaves open taken from
    ``known`` (the IR's, where ``--input`` specs and names were applied), input by input."""
    by_name = {name: dims for name, dims, _ in known}
    refined = []
    for name, dims, dtype in signature:
        better = by_name.get(name)
        if better is not None and len(better) == len(dims):
            dims = [d if isinstance(d, int) and d >= 0 else b for d, b in zip(dims, better, strict=True)]
        refined.append((name, dims, dtype))
    return refined


def lowest_float_precision(model: Any) -> str | None:
    """``"float16"`` or ``"bfloat16"`` when the IR model holds weights or values of that type
    (a model computing in half precision whose outputs may still be float32), else None."""
    import ir

    low = {ir.DataType.FLOAT16: "float16", ir.DataType.BFLOAT16: "bfloat16"}
    found: set[str] = set()
    for value in model.graph.initializers.values():
        if value.dtype in low:
            found.add(low[value.dtype])
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        cast_to = node.attributes.get("to") if node.op_type == "Cast" else None
        if cast_to is not None and ir.DataType(cast_to.value) in low:  # types may not be inferred
            found.add(low[ir.DataType(cast_to.value)])
        for value in node.outputs:
            if value.dtype in low:
                found.add(low[value.dtype])
    return "bfloat16" if "bfloat16" in found else ("float16" if found else None)


def ir_signature(model: Any) -> Signature:
    """``[(name, dims, dtype)]`` of an IR model's graph inputs; symbols stay names."""
    sig: Signature = []
    initializers = set(model.graph.initializers)
    for value in model.graph.inputs:
        if value.name in initializers:
            continue
        dims: list[int | str | None] = []
        for d in value.shape or []:
            dims.append(d if isinstance(d, int) else getattr(d, "value", None))
        dtype = value.dtype
        name = "float32" if dtype is None else np.dtype(dtype.numpy()).name if dtype.name != "BFLOAT16" else "bfloat16"
        sig.append((value.name, dims, name))
    return sig


def _require_cuda() -> None:
    try:
        import torch
    except ImportError:
        raise InputError("--device cuda needs PyTorch with CUDA, and torch is not installed", "use --device cpu") from None
    if not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available on this machine", "use --device cpu")



def _user_inputs(inputs: Any) -> dict[str, np.ndarray]:
    if isinstance(inputs, (str, os.PathLike)):
        path = pathlib.Path(inputs)
        if not path.is_file():
            raise InputError(f"{path}: no such input file", "give a .npz file of named arrays")
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if isinstance(inputs, Mapping):
        return {k: np.asarray(v) for k, v in inputs.items()}
    raise InputError("inputs must be a .npz path or a mapping of name to array")


_SIZE_DEFAULTS = {"batch": 2}


def sizes_within_ranges(model: Any, sizes: Mapping[str, int] | None) -> dict[str, int] | None:
    """``sizes`` plus, for each symbol the model limits to a range (``seq`` >= 11), a default size inside it.

    The defaults (``batch`` 2, others 3) may fall outside what the model accepts;
    a size the caller gave is kept as given.
    """
    from converter.inputs import model_symbol_bounds

    ranges = model_symbol_bounds(model) if isinstance(model, ir.Model) else {}
    out = dict(sizes or {})
    for symbol, (lo, hi) in ranges.items():
        if symbol in out:
            continue
        size = _SIZE_DEFAULTS.get(symbol, 3)
        if lo is not None and size < lo:
            out[symbol] = lo
        elif hi is not None and size > hi:
            out[symbol] = hi
    return out or None


def make_inputs(
    signature: Signature,
    sizes: Mapping[str, int] | None = None,
    int_range: tuple[int, int] = (0, 10),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Seeded random inputs for ``signature``; a symbol takes the same size everywhere."""
    rng = np.random.default_rng(seed)
    bound = {**_SIZE_DEFAULTS, **(sizes or {})}
    feeds = {}
    for name, shape, dtype in signature:
        dims = []
        for axis, d in enumerate(shape):
            if isinstance(d, int) and d >= 0:
                dims.append(d)
            else:
                # An unnamed dynamic leading dim is the batch, as front ends name it.
                key = d if isinstance(d, str) else ("batch" if axis == 0 else f"{name}:{axis}")
                if key not in bound and axis > 0 and default_symbol(name, axis) in bound:
                    key = default_symbol(name, axis)  # the IR's name for this unnamed dim
                dims.append(bound.setdefault(key, 2 if axis == 0 else 3))
        if dtype == "bfloat16":
            raise NotYetSupportedError(
                f"input {name!r} is bfloat16, which numpy, torch.from_numpy and onnxruntime's CPU kernels lack",
                "give the model float32 inputs that it casts to check it",
            )
        np_dtype = np.dtype(dtype)
        if np_dtype.kind == "f":
            feeds[name] = rng.standard_normal(dims).astype(np_dtype)
        elif np_dtype.kind in "iu":
            feeds[name] = rng.integers(int_range[0], int_range[1], size=dims).astype(np_dtype)
        elif np_dtype.kind == "b":
            feeds[name] = rng.integers(0, 2, size=dims).astype(bool)
        else:
            raise NotYetSupportedError(f"random inputs of dtype {dtype} (input {name!r})", "give inputs with --inputs FILE.npz")
    return feeds


def _pair_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if len(expected) != len(actual):
        raise InputError(
            f"the models have different numbers of outputs: {len(expected)} ({', '.join(expected)}) vs {len(actual)} ({', '.join(actual)})"
        )
    if set(expected) == set(actual):
        return {k: (expected[k], actual[k]) for k in expected}
    # Names differ (e.g. TorchScript returns a tuple): pair by position.
    return {k: (expected[k], a) for k, a in zip(expected, actual.values(), strict=True)}


__all__ = [
    "validate", "ParityReport", "OutputParity", "make_inputs", "DEFAULT_TOLERANCES", "Runner", "elementwise_errors",
]
