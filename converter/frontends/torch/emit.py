"""The emitter: what an ATen translation uses to make IR nodes.

One :class:`Emitter` exists per graph being filled (the main graph, or an If /
Loop body). For each FX node the translator calls :meth:`Emitter.begin`, and
every node the translation then makes is appended to that graph, named after
the FX node, and stamped with the node's module path (its provenance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import ir

if TYPE_CHECKING:
    import torch.fx

    from converter.frontends.torch.translate import Translator

INT64 = ir.DataType.INT64
BOOL = ir.DataType.BOOL
FLOAT = ir.DataType.FLOAT


class Emitter:
    """Makes IR nodes in one graph on behalf of the FX node being translated.

    Attributes:
        graph: the graph nodes are appended to.
        node: the FX node being translated (its ``meta["val"]`` gives output types).
        source: the module path recorded as each new node's provenance.
    """

    def __init__(self, translator: Translator, graph: ir.Graph) -> None:
        self.translator = translator
        self.graph = graph
        self.node: torch.fx.Node | None = None
        self.source = ""
        self.made: list[ir.Node] = []

    def begin(self, node: torch.fx.Node, source: str) -> None:
        """Start translating ``node``; ``source`` is its module path."""
        self.node = node
        self.source = source
        self.made = []

    # ---- making nodes -------------------------------------------------------

    def op(self, op_type: str, *inputs: ir.Value | None, outputs: int = 1, **attrs: Any) -> Any:
        """Append ``op_type(*inputs, **attrs)``; returns its output (a tuple if ``outputs > 1``).

        Attributes whose value is ``None`` are left out; bools become ints.
        """
        attributes = {k: (int(v) if isinstance(v, bool) else v) for k, v in attrs.items() if v is not None}
        node = ir.node(op_type, list(inputs), attributes=attributes, num_outputs=outputs)
        base = self.node.name if self.node is not None else op_type.lower()
        for out in node.outputs:
            out.name = self.translator.fresh(base)
        node.name = self.translator.fresh(f"{base}/{op_type}")
        ir.set_source_name(node, self.source or base, "torch")
        self.graph.append(node)
        self.made.append(node)
        return node.outputs[0] if outputs == 1 else tuple(node.outputs)

    def const(self, value: Any, dtype: ir.DataType | None = None) -> ir.Value:
        """A ``Constant`` holding ``value`` (array or Python scalar), as ``dtype`` if given."""
        array = np.asarray(value, dtype=dtype.numpy() if dtype is not None else None)
        if dtype is None and array.dtype == np.float64 and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)
        out = self.op("Constant", value=ir.tensor(array))
        out.dtype = ir.DataType.from_numpy(array.dtype)
        out.shape = ir.Shape(array.shape)
        return out

    def ints(self, values: Sequence[int]) -> ir.Value:
        """A 1-d int64 constant."""
        return self.const(np.asarray(list(values), dtype=np.int64))

    def cast(self, value: ir.Value, dtype: ir.DataType) -> ir.Value:
        """``value`` as ``dtype`` (no node if it already is)."""
        if value.dtype == dtype:
            return value
        out = self.op("Cast", value, to=dtype)
        out.dtype = dtype
        if value.shape is not None:
            out.shape = value.shape
        return out

    def operand(self, x: Any, dtype: ir.DataType) -> ir.Value:
        """An operand of ``dtype``: an IR value cast to it, or a Python number as a 0-d constant."""
        if isinstance(x, ir.Value):
            return self.cast(x, dtype)
        return self.const(x, dtype)

    def shape_vector(self, sizes: Sequence[Any]) -> ir.Value:
        """A 1-d int64 shape from ints and SymInt values (0-d int64)."""
        if all(isinstance(s, int) for s in sizes):
            return self.ints(sizes)
        pieces = []
        for s in sizes:
            if isinstance(s, ir.Value):
                pieces.append(self.op("Reshape", self.cast(s, INT64), self.ints([1])))
            else:
                pieces.append(self.ints([int(s)]))
        return self.op("Concat", *pieces, axis=0)

    def shape_of(self, value: ir.Value, start: int | None = None, end: int | None = None) -> ir.Value:
        """``Shape(value)[start:end]`` as a 1-d int64 value."""
        return self.op("Shape", value, start=start, end=end)

    def subgraph(self, gm: Any, bindings: Sequence[Any], inputs: Sequence[ir.Value] = (), name: str = "body") -> ir.Graph:
        """Translate an FX submodule (a cond branch, a loop body) into a new graph.

        Args:
            gm: the ``torch.fx.GraphModule``.
            bindings: what each placeholder stands for (outer values, which the
                subgraph captures, or the new graph's own ``inputs``).
            inputs: the subgraph's formal inputs (Loop's iteration count and
                carried values); none for If branches.
            name: the graph's name.
        """
        return self.translator.subgraph(gm, bindings, inputs, name=self.translator.fresh(name), source=self.source)

    def translate_inline(self, gm: Any, bindings: Sequence[Any]) -> list[Any]:
        """Translate an FX submodule's nodes into this graph; returns its outputs.

        The node being translated stays current afterwards.
        """
        saved = (self.node, self.source, self.made)
        try:
            return self.translator.walk(gm, list(bindings), self)
        finally:
            self.node, self.source, self.made = saved

    # ---- what the source node says --------------------------------------------

    @property
    def meta(self) -> Any:
        """The FX node's ``meta["val"]`` (a FakeTensor, SymInt, or a tuple of them)."""
        return self.node.meta.get("val") if self.node is not None else None

    @property
    def out_dtype(self) -> ir.DataType:
        """The IR dtype of the node's (first) output."""
        val = self.meta
        if isinstance(val, list | tuple):
            val = val[0]
        return self.translator.dtype_of(val)

    def arg_meta(self, index: int) -> Any:
        """``meta["val"]`` of the node's positional argument ``index`` (or the Python value)."""
        arg = self.node.args[index]
        return arg.meta.get("val") if hasattr(arg, "meta") else arg


def rank(value: ir.Value) -> int:
    """The rank of a value whose shape the translator recorded."""
    if value.shape is None:
        raise ValueError(f"rank of {value.name!r} is unknown")
    return len(value.shape)


def axis_list(dims: Any, ndim: int) -> list[int]:
    """Normalize ``dim`` arguments (int, list, None for all) to non-negative axes."""
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return list(range(ndim))
    if isinstance(dims, int):
        dims = [dims]
    return [d % ndim if ndim else 0 for d in dims]
