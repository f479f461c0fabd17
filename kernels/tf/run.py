"""Walk an ``ir.Model`` calling the TensorFlow kernels: eagerly, or while tracing a ``tf.function``.

The same walk serves the conformance tests (eager, on numpy inputs) and the
SavedModel back end (traced once inside a ``tf.function`` with an input
signature). Graph attributes become :class:`Body` callables that walk the
subgraph with the values of the scopes around it.

With ``channels_last=True`` the walk tracks, per value, whether the tensor it
holds is channels-last (NHWC for an NCHW value); the rules in
``kernels.tf.layout`` let convolutions, pools, batch norms and elementwise ops
consume and produce channels-last tensors, so a chain of convolutions pays one
transpose in and one out, not a pair per layer.

Example:
    >>> from kernels.tf.run import run
    >>> run(model, {"x": np.ones((1, 3, 8, 8), np.float32)})["y"].shape
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

import ir
from kernels.executor import MissingKernelsError, _parameters, kernel_arguments, missing_kernels
from kernels.executor import model_opset as _model_opset
from kernels.tf import TF
from kernels.tf._util import channels_first_perm, channels_last_perm, tf_dtype

#: An initializer's name and the layout it is read in (``None``: as stored).
ParamKey = tuple[str, str | None]


@dataclasses.dataclass
class Held:
    """A value's tensor and whether it is held channels-last."""

    tensor: Any
    channels_last: bool = False


class Body:
    """A subgraph as a callable: ``body(*inputs) -> list of output tensors``."""

    def __init__(self, walker: Walker, graph: ir.Graph, outer: dict[ir.Value, Held]) -> None:
        self.walker, self.graph, self.outer = walker, graph, outer
        self.output_dtypes = [_dtype_of(v) for v in graph.outputs]

    def __call__(self, *args: Any) -> list[tf.Tensor]:
        env = dict(self.outer)
        for value, arg in zip(self.graph.inputs, args, strict=False):
            env[value] = Held(arg)
        self.walker.run_nodes(self.graph, env, channels_last=False)
        return [self.walker.native(env, v) for v in self.graph.outputs]


def _dtype_of(value: ir.Value) -> tf.DType | None:
    return tf_dtype(value.dtype) if value.dtype is not None else None


class Walker:
    """Runs one model's graph on the TensorFlow kernels.

    Args:
        model: the IR model (not modified).
        channels_last: track layouts so convolutions chain without transposes.
        params: tensors or ``tf.Variable``s for initializers, keyed by
            ``(name, layout)`` (see :func:`param_layouts`); missing ones are made
            from the initializer's value on first use.

    Raises:
        MissingKernelsError: some ops have no TensorFlow kernel (all listed).
    """

    def __init__(self, model: ir.Model, *, channels_last: bool = False,
                 params: Mapping[ParamKey, Any] | None = None) -> None:
        self.model = model
        self.opset = _model_opset(model)
        missing = missing_kernels(model, TF)
        if missing:
            raise MissingKernelsError("tf", "cpu", self.opset, missing)
        self.channels_last = channels_last
        self.params = dict(params or {})

    # --- values ------------------------------------------------------------------

    def param(self, value: ir.Value, layout: str | None = None) -> tf.Tensor:
        """The tensor of initializer ``value``, in ``layout`` (see ``kernels.tf.layout``)."""
        p = self.params.get((value.name, layout))
        if p is None:
            p = param_array(value, layout)
        if isinstance(p, tf.Variable):
            return tf.convert_to_tensor(p)
        return tf.constant(p)

    def native(self, env: dict[ir.Value, Held], value: ir.Value | None) -> Any:
        """The tensor of ``value`` in ONNX layout (transposed back if held channels-last)."""
        if value is None:
            return None
        held = self.held(env, value)
        if not held.channels_last:
            return held.tensor
        t = held.tensor
        r = t.shape.rank
        if all(d == 1 for d in t.shape[1:-1]):  # the same element order either way: a free reshape
            return tf.reshape(t, tf.gather(tf.shape(t), channels_first_perm(r)))
        return tf.transpose(t, channels_first_perm(r))

    def channels_last_of(self, env: dict[ir.Value, Held], value: ir.Value) -> tf.Tensor:
        """The tensor of ``value`` channels-last (transposed there if held natively)."""
        held = self.held(env, value)
        if held.channels_last:
            return held.tensor
        return tf.transpose(held.tensor, channels_last_perm(held.tensor.shape.rank))

    def held(self, env: dict[ir.Value, Held], value: ir.Value) -> Held:
        """The held tensor of ``value``; initializers and constants are made on first use."""
        if value not in env:
            if value.const_value is None:
                raise KeyError(f"value {value.name!r} is used before it is computed")
            env[value] = Held(self.param(value))
        return env[value]

    def attribute(self, env: dict[ir.Value, Held], attr: ir.Attr) -> Any:
        if attr.type == ir.AttributeType.GRAPH:
            return Body(self, attr.value, env)
        if attr.type == ir.AttributeType.TENSOR:
            return tf.constant(attr.value.numpy())
        if attr.type in (ir.AttributeType.INTS, ir.AttributeType.FLOATS, ir.AttributeType.STRINGS):
            return list(attr.value)
        return attr.value

    # --- graphs ------------------------------------------------------------------

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run the main graph on tensors (or arrays) by input name; outputs by name, ONNX layout."""
        graph = self.model.graph
        env: dict[ir.Value, Held] = {}
        names = [v.name for v in graph.inputs]
        for value in graph.inputs:
            if value.name in inputs:
                env[value] = Held(tf.convert_to_tensor(inputs[value.name]))
            elif value.const_value is None:
                raise KeyError(f"missing input {value.name!r}; the model's inputs are {names}")
        self.run_nodes(graph, env, channels_last=self.channels_last)
        return {v.name: self.native(env, v) for v in graph.outputs}

    def run_nodes(self, graph: ir.Graph, env: dict[ir.Value, Held], *, channels_last: bool) -> None:
        from kernels.tf.layout import LAYOUT_RULES

        for node in graph:
            rule = LAYOUT_RULES.get(node.op_type) if channels_last else None
            if rule is not None and rule(self, node, env):
                continue
            results = self.call(node, [self.native(env, v) for v in node.inputs], env)
            self.store(env, node, results)

    def call(self, node: ir.Node, args: list[Any], env: dict[ir.Value, Held],
             fn: Callable[..., Any] | None = None) -> list[Any]:
        """Call the node's kernel on ``args`` with the node's attributes (``fn``: a core, args as given)."""
        if fn is None:
            fn = TF.lookup(node.op_type, self.opset)
            args = kernel_arguments(node.op_type, self.opset, args)
        kwargs = {name: self.attribute(env, a) for name, a in node.attributes.items()}
        if "num_outputs" in _parameters(fn) and "num_outputs" not in kwargs:
            kwargs["num_outputs"] = len(node.outputs)
        result = fn(*args, **kwargs)
        return list(result) if isinstance(result, (tuple, list)) else [result]

    def store(self, env: dict[ir.Value, Held], node: ir.Node, results: list[Any], channels_last: bool = False) -> None:
        for value, result in zip(node.outputs, results, strict=False):
            if value.name:
                env[value] = Held(result, channels_last)


def param_array(value: ir.Value, layout: str | None = None) -> np.ndarray:
    """An initializer's value as numpy, rearranged for ``layout``."""
    from kernels.tf.layout import PARAM_LAYOUTS

    array = value.const_value.numpy()
    return PARAM_LAYOUTS[layout](array) if layout is not None else array


def param_layouts(model: ir.Model, channels_last: bool = True) -> list[tuple[ir.Value, str | None]]:
    """Every (initializer, layout) pair that a walk of ``model``'s main graph reads.

    With ``channels_last``, a Conv weight read only as a Conv weight is needed
    in the filter layout only, so the back end stores it once, pre-transposed.
    """
    from kernels.tf.layout import PARAM_INPUTS

    pairs: list[tuple[ir.Value, str | None]] = []
    outputs = set(model.graph.outputs)
    for value in model.graph.initializers.values():
        layouts = set()
        for use in value.uses():
            special = PARAM_INPUTS.get(use.node.op_type, {}).get(use.idx) if channels_last else None
            layouts.add(special if special and use.node.graph is model.graph else None)
        if value in outputs or not layouts:
            layouts.add(None)
        pairs.extend((value, layout) for layout in sorted(layouts, key=str))
    return pairs


def run(model: ir.Model, inputs: Mapping[str, Any], *, channels_last: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` eagerly on numpy ``inputs``; numpy outputs by name.

    Raises:
        MissingKernelsError: ops without a TensorFlow kernel, all listed.
    """
    out = Walker(model, channels_last=channels_last).run(inputs)
    return {k: np.asarray(v) for k, v in out.items()}
