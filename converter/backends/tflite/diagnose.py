"""Diagnosis of a failed conversion: the dims to size with ``--input``, or every refused IR node by source name.

When a conversion fails and fixing the symbolic dims makes it pass, the error
names those dims and the ``--input`` flag that sizes them. Otherwise the
converter's diagnostics (which name TF ops, not IR nodes) are mapped back to
the IR nodes that produced those TF ops, and one error lists them all.
"""

from __future__ import annotations

import re
from typing import Any

import ir
from converter.backends.tflite.convert import ConverterFailed, convert
from converter.backends.tflite.dims import specialize_dims, symbol
from converter.errors import InputError, UnsupportedOpsError

#: The size each symbol gets while probing whether dynamic dims are what fails.
_PROBE_SIZE = 2


def convert_or_diagnose(model: ir.Model, settings: dict[str, Any]) -> bytes:
    """:func:`convert`, or raise one error naming the dims or the IR nodes TFLite refused.

    Raises:
        InputError: dims TFLite cannot keep dynamic (with the flag), or an unexplained failure.
        UnsupportedOpsError: the IR nodes behind the TF ops the converter refused.
    """
    try:
        return convert(model, settings)
    except ConverterFailed as failure:
        message = failure.message
    _raise_if_dynamic_dims(model, settings)
    raise _node_error(model, message) from None


def _raise_if_dynamic_dims(model: ir.Model, settings: dict[str, Any]) -> None:
    """If fixing the model's symbolic dims makes the conversion pass, raise naming them and ``--input``."""
    symbols = ir.symbols.symbolic_dims(model)
    if not symbols or not _converts_with(model, settings, dict.fromkeys(symbols, _PROBE_SIZE)):
        return
    keep_batch = [s for s in symbols if s != "batch"]
    if "batch" in symbols and keep_batch and _converts_with(model, settings, dict.fromkeys(keep_batch, _PROBE_SIZE)):
        symbols = keep_batch
    where = []
    for value in model.graph.inputs:
        axes = [f"axis {i}" for i, d in enumerate(value.shape or []) if symbol(d) in symbols]
        if axes:
            where.append(f"{value.name} {', '.join(axes)}")
    example = " ".join(f"--input '{v.name}:{_example_shape(v, symbols)}'" for v in model.graph.inputs
                       if v.shape is not None and any(symbol(d) in symbols for d in v.shape))
    raise InputError(
        f"TFLite cannot keep dim(s) {', '.join(symbols)} ({'; '.join(where)}) dynamic in this model",
        f"give them sizes with {example}, each <dim> a number (the file is then fixed to those sizes)",
    )


def _example_shape(value: ir.Value, symbols: list[str]) -> str:
    return "x".join(str(d) if isinstance(d, int) else (f"<{symbol(d)}>" if symbol(d) in symbols else str(symbol(d) or "?"))
                    for d in value.shape)


def _converts_with(model: ir.Model, settings: dict[str, Any], sizes: dict[str, int]) -> bool:
    probe = model.clone()
    specialize_dims(probe, sizes)
    try:
        convert(probe, {**settings, "quantize": None, "representative": None})
    except Exception:  # any failure means: not (only) the dynamic dims
        return False
    return True


_TF_OP = re.compile(r"'tf\.([A-Za-z0-9_]+)' op")
_FUSED = re.compile(r'fused\["([A-Za-z0-9_]+):"')
_NOT_FLEX = "is neither a custom op nor a flex op"


def _node_error(model: ir.Model, message: str) -> Exception:
    """One error listing every IR node behind the TF ops the converter refused, by source name.

    The diagnostics name TF ops (``'tf.Erf' op ...``, ``loc(fused["Squeeze:", ...])``),
    not IR nodes: the model is traced once more with one name scope per IR node,
    and each refused TF op type is looked up there.
    """
    refused: dict[str, str] = {}  # TF op type -> what the converter said
    flex_only = True
    for line in message.splitlines():
        if "error" not in line or "loc(" not in line:
            continue
        loc, what = _split_loc(line)
        named = _TF_OP.search(what) or _FUSED.search(loc)
        if named:
            refused.setdefault(named.group(1), what)
            flex_only &= _NOT_FLEX in what
    nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
    by_type = _scoped_op_types(model, nodes) if refused else {}
    found: list[tuple[str, str | None]] = []
    odd_dtypes = False
    for tf_op, what in refused.items():
        for i, tf_dtype in by_type.get(tf_op, []):
            node = nodes[i]
            odd = sorted({tf_dtype} - _BUILTIN_DTYPES) if tf_dtype else []
            odd_dtypes |= bool(odd)
            if odd:
                label = f"{node.op_type} on {'/'.join(odd)}"
            else:
                label = f"{node.op_type} (as TF {tf_op})" if _NOT_FLEX in what else f"{node.op_type} ({_short(what)})"
            found.append((label, ir.source_name(node) or node.name or None))
    if not found:
        first = next((ln for ln in message.splitlines() if "error" in ln.lower()), message.splitlines()[0] if message else "")
        return InputError(f"the TFLite converter failed: {_short(first)}")
    if odd_dtypes:
        hint = (f"TFLite builtins compute in {', '.join(sorted(_BUILTIN_DTYPES))}: cast in the source, "
                "or allow TF (Flex) ops with --tflite-allow-tf-ops")
    elif flex_only:
        hint = "allow TF (Flex) ops with --tflite-allow-tf-ops, or convert to another format"
    else:
        hint = "these nodes have no TFLite form here; convert to another format, or file an issue with this list"
    return UnsupportedOpsError("TensorFlow Lite builtin", found, hint=hint)


#: Element types that TFLite's builtin kernels compute in (TensorFlow's names).
_BUILTIN_DTYPES = {"float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool", "uint32", "string"}


def _split_loc(line: str) -> tuple[str, str]:
    """``(the loc(...) text, the message without it and without "error:")`` of a diagnostic line."""
    start = line.index("loc(")
    depth, end = 0, len(line)
    for i in range(start + 3, len(line)):
        depth += {"(": 1, ")": -1}.get(line[i], 0)
        if depth == 0:
            end = i + 1
            break
    rest = line[:start] + line[end:]
    what = rest.split("error:", 1)[-1].strip(" :")
    return line[start:end], what


def _short(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:160] + ("..." if len(text) > 160 else "")


def _scoped_op_types(model: ir.Model, nodes: list[ir.Node]) -> dict[str, list[tuple[int, str | None]]]:
    """``{TF op type: [(IR node index, the op's dtype "T")]}`` from a trace with one name scope per node."""
    import tensorflow as tf

    from kernels.tf._util import tf_dtype
    from kernels.tf.run import Walker

    index = {id(n): i for i, n in enumerate(nodes)}

    class ScopedWalker(Walker):
        def call(self, node, args, env, fn=None):  # noqa: ANN001, ANN202
            with tf.name_scope(f"cg{index.get(id(node), len(nodes))}"):
                return super().call(node, args, env, fn)

    walker = ScopedWalker(model, channels_last=True)
    feeds = [v for v in model.graph.inputs if not v.is_initializer()]
    specs = [tf.TensorSpec(None if v.shape is None else [d if isinstance(d, int) else None for d in v.shape],
                           tf_dtype(v.dtype)) for v in feeds]

    def serve(*args: Any) -> list[Any]:
        results = walker.run({v.name: a for v, a in zip(feeds, args, strict=True)})
        return [results[v.name] for v in model.graph.outputs]

    try:
        graph_def = tf.function(serve, input_signature=specs, autograph=False).get_concrete_function().graph.as_graph_def()
    except Exception:  # the diagnosis is best effort: without it, the converter's own message is shown
        return {}
    found: dict[str, list[tuple[int, str | None]]] = {}
    for node_def in [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]:
        match = re.match(r"cg(\d+)/", node_def.name)
        if not match or int(match.group(1)) >= len(nodes):
            continue
        dtype = tf.as_dtype(node_def.attr["T"].type).name if node_def.attr["T"].type else None
        entry = (int(match.group(1)), dtype)
        if entry not in found.get(node_def.op, []):
            found.setdefault(node_def.op, []).append(entry)
    return found
