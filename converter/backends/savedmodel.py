"""SavedModel back end: IR -> ``tf.Module`` + ``tf.function`` over ``kernels/tf`` -> SavedModel directory.

The module holds the float weights as ``tf.Variable``s (small and integer
initializers become graph constants, so shape arithmetic folds while tracing)
and one ``tf.function`` whose input signature has ``None`` for every symbolic
dim. Tracing it walks the IR with ``kernels.tf.run.Walker`` in channels-last
mode: values produced by convolutions stay NHWC until an op needs ONNX's layout,
so a chain of convolutions costs one transpose in and one out. Conv weights are
stored pre-transposed in TensorFlow's filter layout.

The ``serving_default`` signature takes and returns the model's own input and
output names, sanitized where TensorFlow requires (``[A-Za-z][A-Za-z0-9_]*``);
``assets.extra/crossgraph.json`` records the mapping, the symbolic dims, the
number of Transpose ops in the traced graph and how many of them move
activations (the rest act on constants, which TensorFlow folds at load).
Signature inputs and outputs must be tensors (no sequences or optionals). The directory needs nothing but
TensorFlow to load (``tf.saved_model.load``, ``saved_model_cli``).

Example:
    >>> from converter.backends import savedmodel
    >>> savedmodel.save(model, pathlib.Path("out_savedmodel"))
    >>> f = tf.saved_model.load("out_savedmodel").signatures["serving_default"]
    >>> f(x=tf.ones([2, 3, 32, 32]))["logits"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import keyword
import os
import pathlib
import re
from typing import Any

import ir

#: Float initializers with more elements than this become variables, the rest constants.
VARIABLE_MIN_SIZE = 16


@dataclasses.dataclass
class Built:
    """A traced module: the ``tf.Module``, its serving function and the name mapping."""

    module: Any
    function: Any  # the concrete function of ``serving_default``
    inputs: dict[str, str]  # model input name -> signature name
    outputs: dict[str, str]  # model output name -> signature name

    def transpose_count(self) -> int:
        """Transpose ops in the traced graph, including control-flow bodies."""
        graph_def = self.function.graph.as_graph_def()
        count = sum(1 for n in graph_def.node if n.op == "Transpose")
        for fn in graph_def.library.function:
            count += sum(1 for n in fn.node_def if n.op == "Transpose")
        return count

    def activation_transpose_count(self) -> int:
        """Transpose ops of the main graph that move data derived from the inputs (not weights or
        other constants, which TensorFlow's graph optimizer folds once when the model loads)."""
        graph_def = self.function.graph.as_graph_def()
        nodes = {n.name: n for n in graph_def.node}
        on_data: dict[str, bool] = {}

        def depends_on_input(name: str) -> bool:
            stack, seen = [name], set()
            while stack:
                current = stack.pop()
                if current in on_data:
                    if on_data[current]:
                        return True
                    continue
                node = nodes.get(current)
                if node is None or current in seen:
                    continue
                seen.add(current)
                if node.op == "Placeholder" and not _is_captured(node):
                    return True
                stack.extend(i.lstrip("^").split(":")[0] for i in node.input)
            return False

        count = 0
        for node in graph_def.node:
            if node.op == "Transpose":
                on_data[node.name] = depends_on_input(node.input[0].split(":")[0])
                count += on_data[node.name]
        return count


def _is_captured(node: Any) -> bool:
    """A placeholder that stands for a captured variable handle, not a signature input."""
    dtype = node.attr["dtype"].type if "dtype" in node.attr else None
    return dtype == 20  # DT_RESOURCE


def sanitize_names(names: list[str]) -> dict[str, str]:
    """Unique TensorFlow-safe names (``[A-Za-z][A-Za-z0-9_]*``) for ``names``, in order.

    A Python keyword (``class``, ``def``) gets a trailing ``_``: ``tf.function`` makes the
    signature names parameters of a Python function, where keywords are rejected.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = re.sub(r"\W", "_", name) or "value"
        if not base[0].isalpha():
            base = "t_" + base
        if keyword.iskeyword(base):
            base += "_"
        candidate, n = base, 1
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        out[name] = candidate
    return out


def _spec(value: ir.Value, name: str) -> Any:
    import tensorflow as tf

    from kernels.tf._util import tf_dtype

    if value.dtype is None:
        raise ValueError(f"input {value.name!r} has no dtype")
    shape = None if value.shape is None else [d if isinstance(d, int) else None for d in value.shape]
    return tf.TensorSpec(shape, tf_dtype(value.dtype), name=name)


def _is_variable(array: Any) -> bool:
    return array.dtype.kind == "f" and array.size > VARIABLE_MIN_SIZE


def release_mapped(value: ir.Value) -> None:
    """Unmap an external (memory-mapped) initializer whose data was copied elsewhere.

    The pages a copy reads stay resident (and count in the process's memory) as
    long as the mapping lives; closing it returns them. The tensor maps its file
    again if it is read later, so the IR stays usable.
    """
    tensor = value.const_value
    if isinstance(tensor, ir.ExternalTensor):
        try:
            tensor.release()
        except BufferError:
            pass  # a view of the mapping is still alive elsewhere: it stays mapped


def _check_signature_types(model: ir.Model) -> None:
    """Signature inputs and outputs must be tensors: a SavedModel signature has no sequences or optionals."""
    from converter.errors import NotYetSupportedError

    values = [v for v in model.graph.inputs if not v.is_initializer()] + list(model.graph.outputs)
    bad = [v.name for v in values if v.type is not None and not isinstance(v.type, ir.TensorType)]
    if bad:
        raise NotYetSupportedError(
            f"a SavedModel signature takes and returns tensors only; {', '.join(bad)} "
            "are sequences or optionals",
            hint="keep sequences inside the graph (build them from tensor inputs, return tensors)")


def _refuse_zipmap(model: ir.Model) -> None:
    """A ZipMap (scikit-learn probabilities as a sequence of maps) cannot be a signature output."""
    from converter.errors import NotYetSupportedError

    if any(node.op_type == "ZipMap" for node in ir.traversal.RecursiveGraphIterator(model.graph)):
        raise NotYetSupportedError(
            "the model returns its probabilities through ZipMap (a sequence of maps), which a SavedModel "
            "signature cannot hold",
            hint="export the scikit-learn model with zipmap=False (skl2onnx: options={'zipmap': False}) "
                 "to return a probability tensor")


def build(model: ir.Model, *, channels_last: bool = True) -> Built:
    """Trace ``model`` into a ``tf.Module`` with a ``serve`` function and its concrete function.

    Raises:
        MissingKernelsError: ops without a TensorFlow kernel, all listed.
        NotYetSupportedError: a signature input or output is a sequence or an optional, or a ZipMap.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from kernels.tf.run import Walker, param_array, param_layouts

    _refuse_zipmap(model)
    Walker(model)  # checks kernels before any work
    graph = model.graph
    _check_signature_types(model)
    module = tf.Module()
    params: dict[tuple[str, str | None], Any] = {}
    variables = []
    for value, layout in param_layouts(model, channels_last):
        array = param_array(value, layout)
        if _is_variable(array):
            var = tf.Variable(array, trainable=False, name=re.sub(r"[^A-Za-z0-9_.\-/]", "_", value.name) or "w")
            del array  # the variable holds its own copy: drop the mapped pages of the source
            release_mapped(value)
            variables.append(var)
            params[(value.name, layout)] = var
        else:
            params[(value.name, layout)] = array
    module.weights = variables
    walker = Walker(model, channels_last=channels_last, params=params)
    feeds = [v for v in graph.inputs if not v.is_initializer()]
    inputs = sanitize_names([v.name for v in feeds])
    outputs = sanitize_names([v.name for v in graph.outputs])

    def serve(*args: Any) -> dict[str, Any]:
        results = walker.run({v.name: a for v, a in zip(feeds, args, strict=True)})
        return {outputs[v.name]: tf.identity(results[v.name]) for v in graph.outputs}

    module.serve = tf.function(serve, input_signature=[_spec(v, inputs[v.name]) for v in feeds], autograph=False)
    return Built(module, module.serve.get_concrete_function(), inputs, outputs)


def _manifest(model: ir.Model, built: Built) -> dict[str, Any]:
    def entry(value: ir.Value, tf_name: str) -> dict[str, Any]:
        shape = None if value.shape is None else [d if isinstance(d, int) else str(d) for d in value.shape]
        return {"name": value.name, "signature_name": tf_name, "shape": shape,
                "dtype": value.dtype.name if value.dtype is not None else None}

    return {
        "producer": "crossgraph",
        "signature": "serving_default",
        "inputs": [entry(v, built.inputs[v.name]) for v in model.graph.inputs if v.name in built.inputs],
        "outputs": [entry(v, built.outputs[v.name]) for v in model.graph.outputs],
        "opset": model.opset_imports.get("", model.opset_imports.get("ai.onnx")),
        "transposes": built.transpose_count(),
        "activation_transposes": built.activation_transpose_count(),
    }


def save(model: ir.Model, path: pathlib.Path, *, format: str = "savedmodel", **options: Any) -> None:  # noqa: A002
    """Write ``model`` as a TensorFlow SavedModel directory at ``path``.

    Args:
        model: the IR model.
        path: the directory to create (the API hands a staged path; it is written in place).
        format: ``"savedmodel"``.
        options: ``channels_last`` (default True) keeps convolution chains NHWC;
            ``loops`` how Loop/Scan/RNN outputs collect (``kernels.tf.accumulate.MODES``;
            default ``"tensor_arrays"``, fastest in TensorFlow; the TFLite back end
            asks for ``"growing"``); ``tflite_builtins`` (default False) traces ops
            that TFLite has no builtin for with ones it has (``kernels.tf._util.tflite_builtins``,
            asked for by the TFLite back end); other options (``opset``) are ignored.

    Raises:
        MissingKernelsError: ops without a TensorFlow kernel, all listed.
    """
    import tensorflow as tf

    from kernels.tf import accumulate
    from kernels.tf._util import tflite_builtins

    path = pathlib.Path(path)
    builtins = tflite_builtins() if options.get("tflite_builtins") else contextlib.nullcontext()
    with accumulate.mode(options.get("loops", "tensor_arrays")), builtins:
        built = build(model, channels_last=bool(options.get("channels_last", True)))
        tf.saved_model.save(built.module, str(path), signatures={"serving_default": built.function})
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "crossgraph.json").write_text(json.dumps(_manifest(model, built), indent=2) + "\n")
    del built
    if _weight_bytes(model) > _COLLECT_ABOVE:
        # The module sits in reference cycles: free its variables before parity loads the
        # result. A full collection costs ~0.1-0.5 s with TensorFlow loaded: only for big weights.
        gc.collect()


#: Weights above this many bytes are freed by a garbage collection right after the export.
_COLLECT_ABOVE = 64 * 2**20


def _weight_bytes(model: ir.Model) -> int:
    return sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None)
