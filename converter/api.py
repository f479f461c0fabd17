"""crossgraph's Python API: load, save, convert, optimize, validate.

Every path goes through the IR: a front end loads the source into an ``ir.Model``,
passes optimize it, a back end writes it, and parity checks the result against
the source in their own runtimes.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import ir
from converter import formats, safety, staging
from converter.errors import (
    CrossgraphError,
    InputError,
    NotYetSupportedError,
    ParityError,
    UnsupportedOpsError,
)
from converter.inputs import normalize_inputs
from converter.visual import progress


@dataclasses.dataclass
class ConversionResult:
    """What :func:`convert` did: formats, node counts, pass report, parity, timings."""

    source: str
    destination: str
    source_format: str
    target_format: str
    nodes_before: int
    nodes_after: int
    optimize_level: int
    pass_summary: str | None = None
    passes: Any = None
    backend_info: dict[str, Any] | None = None
    parity: Any = None
    parity_note: str | None = None
    #: symbol -> (min, max) where the model accepts only a range (``seq`` <= a position table's rows)
    dim_ranges: dict[str, tuple[int | None, int | None]] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["passes"] = self.passes.to_dict() if hasattr(self.passes, "to_dict") else None
        d["parity"] = self.parity.to_dict() if self.parity is not None else None
        return d

    def summary(self) -> str:
        lines = [
            f"{self.source} ({self.source_format}) -> {self.destination} ({self.target_format})",
            f"  nodes: {self.nodes_before} -> {self.nodes_after}" + (f"  [{self.pass_summary}]" if self.pass_summary else ""),
        ]
        if self.dim_ranges:
            lines.append("  dims limited by the model: " + ", ".join(
                f"{name} in {lo or 1}..{'' if hi is None else hi}" for name, (lo, hi) in self.dim_ranges.items()))
        if self.backend_info:
            lines.append("  " + ", ".join(f"{k}: {', '.join(map(str, v)) or 'none' if isinstance(v, list) else v}"
                                          for k, v in self.backend_info.items()))
        if self.parity is not None:
            lines.append(f"  {self.parity.summary()}")
        elif self.parity_note:
            lines.append(f"  parity: {self.parity_note}")
        total = sum(self.seconds.values())
        lines.append("  time: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items()) + f" (total {total:.2f}s)")
        return "\n".join(lines)


def load(source: Any, *, format: str | None = None, inputs: Any = None, unsafe_load: bool = False,
         **options: Any) -> ir.Model:
    """Load ``source`` (a path or a live model object) into the IR.

    Args:
        source: a model file or directory, or a live object (``nn.Module``,
            ``ExportedProgram``, ``ScriptModule``, Keras model, ``tf.function``,
            ``onnx.ModelProto``).
        format: the source format (see ``crossgraph formats``); detected if omitted.
        inputs: example inputs or input specs (``"x:batch x 3 x 224 x 224"``) where
            the source has no signature.
        unsafe_load: load files that would run embedded code (Keras ``Lambda``
            layers, TF ``PyFunc``/file ops, TorchScript file access); off by default.
        **options: front-end options (``signature=`` for SavedModels, ...).

    Returns:
        The model in the IR.

    Raises:
        InputError: the source is missing, unreadable or of an unknown format.
        NotYetSupportedError: the format has no front end yet.
        UnsupportedOpsError: the model uses ops with no translation (all listed).
        UnsafeModelError: the file would run code; pass ``unsafe_load=True`` if trusted.

    Example:
        >>> model = converter.load("fixtures/models/onnx/mlp.onnx")   # doctest: +SKIP
        >>> [v.name for v in model.graph.inputs]
        ['x']
    """
    fmt = formats.detect_source(source, format)
    spec = formats.FORMATS[fmt]
    if not spec.can_read():
        raise NotYetSupportedError(f"reading {fmt} models is not supported yet", "see `crossgraph formats` for what is")
    safety.check_source(source, fmt, unsafe_load=unsafe_load)
    if unsafe_load:
        options["unsafe_load"] = True
    frontend = importlib.import_module(f"converter.frontends.{spec.frontend}")
    return frontend.load(source, format=fmt, inputs=normalize_inputs(inputs), **options)


def save(model: ir.Model, destination: str | os.PathLike, *, format: str | None = None, opset: int | None = None,
         **options: Any) -> pathlib.Path:
    """Write ``model`` to ``destination`` atomically, in ``format`` (detected from the path).

    An existing destination is replaced only if the whole write succeeds.

    Returns:
        The destination path.

    Raises:
        InputError: the destination cannot be written, or ``opset`` is impossible.
        NotYetSupportedError: the target format has no back end yet.
    """
    destination = pathlib.Path(destination)
    fmt, backend = _backend_for(destination, format)
    if opset is not None:
        options["opset"] = opset
    with staging.staged(destination) as tmp:
        _write(backend, model, tmp, fmt, options)
    return destination


def _write(backend: Any, model: ir.Model, path: pathlib.Path, fmt: str, options: dict[str, Any]) -> Any:
    """Run a back end (returns what it reports); ops without a kernel become one error listing all."""
    try:
        return backend.save(model, path, format=fmt, **options)
    except NotImplementedError as e:
        missing = getattr(e, "missing", None)
        if not missing:  # a kernel or generator refusing an attribute value or a form of an op
            where = f" ({e.node.op_type} node {ir.source_name(e.node)!r})" if getattr(e, "node", None) else ""
            raise NotYetSupportedError(
                f"the {fmt} back end cannot write this model yet{where}: {e}",
                "convert to ONNX instead, or file an issue with this message",
            ) from None
        raise UnsupportedOpsError(
            f"ONNX (for the {fmt} back end)", missing,
            hint="these ops have no kernel yet; convert to ONNX instead, or file an issue with this list",
        ) from None


def _backend_for(destination: pathlib.Path, format: str | None) -> tuple[str, Any]:
    fmt = formats.detect_target(destination, format)
    spec = formats.FORMATS[fmt]
    if not spec.can_write():
        raise NotYetSupportedError(f"writing {fmt} models is not supported yet", "see `crossgraph formats` for what is")
    staging.check_destination(destination, is_dir=fmt == "savedmodel")
    return fmt, importlib.import_module(f"converter.backends.{spec.backend}")


def optimize(model: ir.Model, level: int = 2, *, verify_each: bool = False) -> Any:
    """Optimize ``model`` in place at ``level`` (0: nothing, 1: cleanup, 2: fusions and layout).

    Returns:
        The :class:`passes.PassReport` (``.summary()``, ``.to_dict()``, ``.table_rows()``).
    """
    if level not in (0, 1, 2):
        raise InputError(f"unknown optimization level {level}", "use 0, 1 or 2")
    import passes

    return passes.optimize(model, level, verify_each=verify_each)


def validate(source: Any, converted: Any, *, inputs: Any = None, rtol: float | None = None, atol: float | None = None,
             device: str = "cpu", **options: Any) -> Any:
    """Check that ``converted`` computes what ``source`` does; see :func:`converter.parity.validate`."""
    from converter import parity

    return parity.validate(source, converted, inputs=inputs, rtol=rtol, atol=atol, device=device, **options)


def convert(
    source: Any,
    destination: str | os.PathLike,
    *,
    source_format: str | None = None,
    target_format: str | None = None,
    inputs: Any = None,
    opset: int | None = None,
    optimize: int = 2,
    check: bool = True,
    device: str = "cpu",
    unsafe_load: bool = False,
    tensorboard: str | os.PathLike | None = None,
    **options: Any,
) -> ConversionResult:
    """Convert ``source`` to ``destination``: load, optimize, save, and check parity.

    The destination is written atomically: on any failure (including a parity
    failure) an existing destination is untouched and nothing partial is left.

    Args:
        source: path or live model object.
        destination: the file or directory to write; its suffix picks the format.
        source_format, target_format: override format detection.
        inputs: example inputs or input specs (see :func:`load`).
        opset: target ONNX opset (ONNX destinations).
        optimize: optimization level 0, 1 or 2.
        check: run parity between source and result before committing it.
        device: where parity runs (``cpu`` or ``cuda``).
        unsafe_load: allow source files that run embedded code (see :func:`load`).
        tensorboard: a log directory: the source (as loaded) and the result (after the
            passes) are written there as TensorBoard graphs, runs ``source`` and ``converted``.

    Returns:
        A :class:`ConversionResult`.

    Raises:
        CrossgraphError: bad input, unsupported model (exit code 2), or
            :class:`ParityError` when the check fails (exit code 1).

    Example:
        >>> converter.convert("model.onnx", "model.pt").summary()   # doctest: +SKIP
    """
    seconds: dict[str, float] = {}
    destination = pathlib.Path(destination)
    src_fmt = formats.detect_source(source, source_format)
    tgt_fmt, backend = _backend_for(destination, target_format)
    frontend_options = {k: v for k, v in options.items() if not k.startswith("backend_")}
    backend_options = {k[len("backend_"):]: v for k, v in options.items() if k.startswith("backend_")}

    label = formats.describe(source)
    if src_fmt == "torch" and isinstance(source, str):
        # package.module:function: build the module once, so parity compares against the same weights.
        from converter.frontends.torch.export import call_factory

        source = call_factory(source)
    t = time.perf_counter()
    with progress.stage(f"loading {src_fmt}"):
        model = load(source, format=src_fmt, inputs=inputs, unsafe_load=unsafe_load, **frontend_options)
    seconds["load"] = time.perf_counter() - t
    nodes_before = _count_nodes(model)
    if tgt_fmt == "tflite" and inputs is not None and "specialize" not in backend_options:
        from converter.backends.tflite import sizes_from_specs

        sizes = sizes_from_specs(model, normalize_inputs(inputs))
        if sizes:  # dims the user sized with --input are fixed where TFLite cannot keep them dynamic
            backend_options["specialize"] = sizes
    if tensorboard is not None:
        from converter.visual import tensorboard as tb

        tb.write_graph(model, tensorboard, run_name="source")

    report = None
    if optimize:
        t = time.perf_counter()
        with progress.stage(f"optimizing -O{optimize}"):
            report = globals()["optimize"](model, optimize)
        seconds["optimize"] = time.perf_counter() - t
    if tensorboard is not None:
        tb.write_graph(model, tensorboard, run_name="converted")

    result = ConversionResult(
        source=label, destination=str(destination), source_format=src_fmt, target_format=tgt_fmt,
        nodes_before=nodes_before, nodes_after=_count_nodes(model), optimize_level=optimize,
        pass_summary=report.summary() if report is not None else None, passes=report, seconds=seconds,
        dim_ranges=_limited_dims(model),
    )
    with staging.staged(destination) as tmp:
        t = time.perf_counter()
        if opset is not None:
            backend_options["opset"] = opset
        with progress.stage(f"saving {tgt_fmt}"):
            info = _write(backend, model, tmp, tgt_fmt, backend_options)
        result.backend_info = info if isinstance(info, dict) else None
        seconds["save"] = time.perf_counter() - t
        if check:
            t = time.perf_counter()
            _check_parity(result, model, source, src_fmt, tmp, tgt_fmt, inputs, device, unsafe_load)
            seconds["validate"] = time.perf_counter() - t
    return result


def _check_parity(result: ConversionResult, model: ir.Model, source: Any, src_fmt: str, staged: pathlib.Path,
                  tgt_fmt: str, inputs: Any, device: str, unsafe_load: bool) -> None:
    from converter import parity

    feeds = _parity_data(inputs)
    try:
        precision = (result.backend_info or {}).get("quantize", "float32")
        report = parity.validate(source, staged, source_format=src_fmt, converted_format=tgt_fmt,
                                 inputs=feeds, device=device, unsafe_load=unsafe_load,
                                 localize=precision == "float32", model=model, spec_inputs=inputs,
                                 min_cosine=_MIN_COSINE.get(precision),
                                 sizes=(result.backend_info or {}).get("specialized"))
    except NotYetSupportedError as e:
        result.parity_note = f"not checked ({e.message})"
        return
    report.converted = result.destination
    result.parity = report
    if not report.passed:
        failed = [o for o in report.outputs if not o.passed]
        worst = max(failed, key=lambda o: o.max_abs_error)
        raise ParityError(
            f"parity check failed: {len(failed)} of {len(report.outputs)} output(s) differ "
            f"(worst {worst.name!r}: max abs error {worst.max_abs_error:.3g}, "
            f"{worst.mismatch_fraction:.1%} of elements outside rtol={worst.rtol:g}, atol={worst.atol:g}); "
            + (f"{report.localization['summary']}; " if report.localization and "summary" in report.localization else "")
            + f"{result.destination} was not written",
            "inspect with `crossgraph validate`, or convert with --no-check to write it anyway",
            report=report,
        )


#: How close reduced-precision results must stay to the source (cosine similarity per output).
_MIN_COSINE = {"fp16": 0.999, "dynamic-int8": 0.99, "int8": 0.98}


def _limited_dims(model: ir.Model) -> dict[str, tuple[int | None, int | None]]:
    """The recorded symbol ranges that limit a dim (an upper bound, or a minimum above 2)."""
    from converter.inputs import model_symbol_bounds

    return {name: (lo, hi) for name, (lo, hi) in model_symbol_bounds(model).items()
            if hi is not None or (lo or 0) > 2}


def _parity_data(inputs: Any) -> Any:
    """User data usable as parity inputs: a ``.npz`` path or a mapping of arrays (not specs)."""
    if isinstance(inputs, (str, os.PathLike)) and str(inputs).endswith(".npz"):
        return inputs
    if isinstance(inputs, Mapping) and all(hasattr(v, "shape") for v in inputs.values()):
        return {k: _as_numpy(v) for k, v in inputs.items()}
    return None


def _as_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value.numpy() if hasattr(value, "numpy") else value


def _count_nodes(model: ir.Model) -> int:
    """Nodes in the model and its subgraphs, not counting Constant nodes (as the pass report does)."""
    return sum(1 for n in ir.traversal.RecursiveGraphIterator(model.graph) if n.op_type != "Constant")



__all__ = ["load", "save", "convert", "optimize", "validate", "ConversionResult", "CrossgraphError"]
