"""The one road every TensorFlow source takes into the IR: a traced ``tf.function``.

Each source kind (SavedModel, Keras file, live object; see the sibling modules)
is turned into a :class:`Traced`: a ``tf.function`` with an input signature
whose outputs are a dict keyed by the output names. :func:`to_ir` then

1. converts it with tf2onnx (``from_function``) at tf2onnx's newest opset (18),
   collecting what tf2onnx logs as unsupported; functions marked for XLA
   (Keras wraps grouped and depthwise convolutions in ``jit_compile=True``)
   are unmarked first so TF's inliner opens them (:func:`_allow_xla_inlining`),
   and the handlers of :mod:`.handlers` replace tf2onnx's for the ops it
   translates wrongly;
2. repairs or rejects every op that is not an ONNX op, and rewrites attribute
   values ONNX removed (:mod:`.repairs`);
3. upgrades the model to ``ir.DEFAULT_OPSET`` (onnxscript's version converter);
4. names dynamic dims and records provenance (:mod:`.naming`);
5. runs ``ir.verify``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

import ir
from converter.errors import CrossgraphError, InputError
from converter.frontends.tensorflow import handlers, naming, repairs

#: tf2onnx 1.17 writes opsets up to 18; the model is upgraded from there.
TF2ONNX_OPSET = 18

_UNSUPPORTED_LOG = re.compile(r"Tensorflow op \[(?P<name>[^:\]]+): (?P<op>[^\]]+)\] is not supported")


@dataclasses.dataclass
class Traced:
    """A TF source made ready for tf2onnx.

    Attributes:
        function: a ``tf.function`` taking the inputs positionally and returning
            ``{output name: tensor}``.
        signature: its input ``tf.TensorSpec`` list; each spec's ``name`` is the
            graph input's name.
        symbols: ``{input name: {axis: symbol}}`` for the dynamic dims.
        namer: maps a TF op name to the source name recorded as provenance.
        probe: the same computation as plain Python (retraceable), used to tie
            output dims to input symbols by tracing at concrete sizes; ``None``
            when the source is already a fixed graph.
        description: what the source is, for error messages.
        output_order: the outputs' order in the source (TF sorts a returned
            dict's keys; Keras models list theirs in their own order).
    """

    function: Any
    signature: list[Any]
    symbols: dict[str, dict[int, str]]
    namer: naming.SourceNamer | None = None
    probe: Callable[..., Mapping[str, Any]] | None = None
    description: str = "TensorFlow function"
    output_order: list[str] | None = None


def to_ir(traced: Traced, opset: int = ir.DEFAULT_OPSET) -> ir.Model:
    """Convert ``traced`` to a verified ``ir.Model`` at ``opset``.

    Raises:
        UnsupportedOpsError: TF ops with no ONNX translation, all of them.
        CrossgraphError: tf2onnx failed for another reason.
    """
    import tf2onnx

    _allow_xla_inlining()
    handlers.install()
    with _captured_tf2onnx_log() as records:
        try:
            proto, _ = tf2onnx.convert.from_function(
                traced.function, input_signature=traced.signature, opset=TF2ONNX_OPSET
            )
        except Exception as e:  # tf2onnx raises bare ValueError/KeyError/...
            raise CrossgraphError(f"tf2onnx could not convert {traced.description}: {_reason(e)}") from e
    _captures_to_initializers(proto, traced)
    model = _finish(proto, traced, _unsupported(records), opset)
    try:
        ir.verify(model)
    except ir.VerificationError as e:
        raise CrossgraphError(f"converting {traced.description} gave an invalid graph: {e}") from e
    return model


def _reason(error: Exception) -> str:
    """``Type: message`` of ``error``; for an error TF raised while tracing, the error at the end.

    TensorFlow reports an exception raised inside the traced Python code as
    ``in user code:`` followed by a stack of file lines and, last, the original
    ``Type: message`` (Keras appends the arguments it received): the reason is
    that message, on one line, without Keras' terminal colour codes.
    """
    text = str(error).strip()
    if not text.startswith("in user code:"):
        return f"{type(error).__name__}: {text}"
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line)]
    message = lines[starts[-1]:] if starts else lines[-1:]
    if "Arguments received by" in " ".join(message):
        message = message[: next(i for i, line in enumerate(message) if line.startswith("Arguments received by"))]
    return f"{' '.join(line for line in message if line)} (raised while tracing the model)"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*:")


_XLA_MARKERS = ("_XlaMustCompile", "_noinline")


def _allow_xla_inlining() -> None:
    """Let TF's function inliner open functions marked for XLA before tf2onnx converts the graph.

    Keras (TF backend) computes grouped and depthwise convolutions in a
    ``tf.function(jit_compile=True)``; grappler never inlines such a call, so
    tf2onnx meets an opaque ``StatefulPartitionedCall`` (tf2onnx issues 2099,
    2347: every Keras ConvNeXt). tf2onnx freezes the function, passes the frozen
    ``GraphDef`` through ``tf_loader.fix_freezing_errors_part2`` and then runs
    grappler: this wraps that step to drop the XLA markers from every node and
    library function. XLA compilation is an execution hint; the ops are the same.
    Installed once, process-wide, idempotent.
    """
    from tf2onnx import tf_loader

    original = tf_loader.fix_freezing_errors_part2
    if getattr(original, "_crossgraph_unmarks_xla", False):
        return

    def unmarked(graph_def: Any) -> Any:
        graph_def = original(graph_def)
        nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
        for node in nodes:
            for key in _XLA_MARKERS:
                node.attr.pop(key, None)
        for function in graph_def.library.function:
            for key in _XLA_MARKERS:
                function.attr.pop(key, None)
        return graph_def

    unmarked._crossgraph_unmarks_xla = True  # type: ignore[attr-defined]
    tf_loader.fix_freezing_errors_part2 = unmarked


def _reorder_outputs(model: ir.Model, order: list[str]) -> None:
    rank = {name: i for i, name in enumerate(order)}
    outputs = sorted(model.graph.outputs, key=lambda v: rank.get(v.name, len(rank)))
    model.graph.outputs.clear()
    model.graph.outputs.extend(outputs)


def _finish(proto, traced: Traced, logged: list[tuple[str, str]], opset: int) -> ir.Model:
    """Steps 2-4 of :func:`to_ir` on tf2onnx's ``ModelProto``."""
    from onnxscript import version_converter

    model = ir.serde.deserialize_model(proto)
    namer = traced.namer or (lambda name: name)
    repairs.repair_and_check(model, TF2ONNX_OPSET, lambda n: namer(naming.clean_tf_name(n)), logged)
    repairs.fix_removed_resize_modes(model)
    if opset != TF2ONNX_OPSET:
        version_converter.convert_version(model, opset, fallback=True)
    naming.record_provenance(model, namer)
    naming.name_dims(model, traced.symbols, _probe(traced))
    if traced.output_order:
        _reorder_outputs(model, traced.output_order)
    model.producer_name = "crossgraph (tensorflow front end, via tf2onnx)"
    return model


def _unsupported(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    found = []
    for record in records:
        match = _UNSUPPORTED_LOG.search(record.getMessage())
        if match:
            found.append((match["op"], match["name"]))
    return found


def _captures_to_initializers(proto: Any, traced: Traced) -> None:
    """Constants the function captured from eager code become initializers, not graph inputs.

    tf2onnx freezes variables but leaves captured eager tensors (a Keras
    ``Normalization`` layer's mean and variance, say) as placeholders, which would
    surface as extra model inputs.
    """
    import onnx
    import tensorflow as tf

    try:
        concrete = traced.function.get_concrete_function(*traced.signature)
    except (TypeError, ValueError):
        return
    values = {}
    for external, internal in concrete.graph.captures:
        if internal.dtype != tf.resource and hasattr(external, "numpy"):
            values[internal.name] = external.numpy()
    if not values:
        return
    kept = [i for i in proto.graph.input if i.name not in values]
    moved = [i.name for i in proto.graph.input if i.name in values]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    for name in moved:
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(values[name]), name))


@contextlib.contextmanager
def _captured_tf2onnx_log() -> Iterator[list[logging.LogRecord]]:
    """Collect tf2onnx's log records instead of printing them (its errors become ours)."""
    logger = logging.getLogger("tf2onnx")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate, _ = saved
        logger.setLevel(saved[1])


def _probe(traced: Traced) -> dict[str, dict[int, str]]:
    """``{output: {axis: symbol}}``: output dims that follow an input symbol.

    Traces ``traced.probe`` with every symbol bound to its own prime size (TF's
    shape inference then fixes the output dims that depend on it); an output
    dim equal to exactly one symbol's size gets that symbol.
    """
    if traced.probe is None:
        return {}
    import tensorflow as tf

    sizes: dict[str, int] = {}
    primes = iter(naming.PRIMES)
    specs = []
    for spec in traced.signature:
        dims = list(spec.shape.as_list()) if spec.shape.rank is not None else None
        for axis, symbol in traced.symbols.get(spec.name, {}).items():
            if dims is not None:
                dims[axis] = sizes.setdefault(symbol, next(primes, None))
        specs.append(tf.TensorSpec(dims, spec.dtype, name=spec.name))
    by_size = {size: symbol for symbol, size in sizes.items() if size is not None}
    try:
        outputs = tf.function(traced.probe).get_concrete_function(*specs).structured_outputs
    except Exception:  # a model that cannot be traced at these sizes: no names
        return {}
    found: dict[str, dict[int, str]] = {}
    for name, tensor in outputs.items():
        for axis, dim in enumerate(tensor.shape.as_list() if tensor.shape.rank is not None else []):
            if dim in by_size:
                found.setdefault(name, {})[axis] = by_size[dim]
    return found


def as_output_dict(result: Any, names: list[str] | None = None, keep: list[str] | None = None) -> dict[str, Any]:
    """A function's result as ``{name: tensor}``; unnamed results are ``output_0``, ``output_1``...

    A dict keeps its keys, and a value of a dict that is itself a structure
    (``{"a": (x, y)}``) gives one output per tensor in it, ``a_0``, ``a_1``...; a
    tensor or a (nested) list/tuple is flattened in order, named by ``names`` when
    given. ``keep`` selects outputs by name, in its order.

    Raises:
        InputError: a name in ``keep`` is not an output (the message lists them).
    """
    import tensorflow as tf

    if isinstance(result, Mapping) and names is None:
        named = _flat_dict(result)
    else:
        flat = tf.nest.flatten(result)
        names = names or [f"output_{i}" for i in range(len(flat))]
        if len(names) != len(flat):
            raise CrossgraphError(f"{len(flat)} outputs but {len(names)} output names: {names}")
        named = dict(zip(names, flat, strict=True))
    if not keep:
        return named
    missing = [k for k in keep if k not in named]
    if missing:
        raise InputError(f"no output named {', '.join(map(repr, missing))}", f"outputs are: {', '.join(named)}")
    return {k: named[k] for k in keep}


def _flat_dict(result: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: tensor}``, a structured value giving ``key_0``, ``key_1``... (tf.nest order)."""
    import tensorflow as tf

    named: dict[str, Any] = {}
    for key, value in result.items():
        if tf.is_tensor(value) or not tf.nest.is_nested(value):
            named[str(key)] = value
        else:
            named.update((f"{key}_{i}", leaf) for i, leaf in enumerate(tf.nest.flatten(value)))
    return named
