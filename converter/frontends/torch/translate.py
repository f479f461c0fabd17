"""The graph walk: an ExportedProgram (core ATen) to an ``ir.Model``.

1. Every op of the graph and its submodules (cond branches, loop bodies) is
   looked up in :data:`~converter.frontends.torch.ops.ATEN` first, so that a model
   with several untranslatable ops fails once, naming all of them.
2. Parameters, buffers and lifted constants become initializers that wrap the
   torch tensors (no copy); user inputs become graph inputs named after the
   ``forward`` arguments, with symbolic dims named after the user's symbols.
3. Each FX node is translated by its registered function; its outputs get the
   node's dtype and shape from ``meta["val"]``.
4. User outputs are named ``output`` (one), ``output_<i>`` (several), or after
   the keys of a returned dict.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import sympy
import torch
import torch.fx
from onnx_ir.tensor_adapters import TorchTensor, from_torch_dtype
from torch.export.graph_signature import InputKind, OutputKind

import ir
from converter.errors import InputError, UnsupportedOpsError
from converter.frontends.torch.emit import Emitter
from converter.frontends.torch.ops import ATEN

_WEIGHT_KINDS = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)


def op_key(target: Any) -> str:
    """The registry key of an FX call target (``aten::add.Tensor``, ``_operator::mul``)."""
    if isinstance(target, torch._ops.OpOverload):
        name = f"{target.namespace}::{target._opname}"
        return name if target._overloadname == "default" else f"{name}.{target._overloadname}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order::{target.name()}"
    module = (getattr(target, "__module__", None) or "builtins").split(".")[0]
    return f"{module}::{getattr(target, '__name__', repr(target))}"


def module_path(node: torch.fx.Node) -> str:
    """The dotted path of the innermost ``nn.Module`` the node came from ('' if none)."""
    stack = node.meta.get("nn_module_stack") or {}
    paths = [v[0] for v in stack.values() if isinstance(v, tuple) and v and isinstance(v[0], str)]
    paths = [p for p in paths if p and not p.startswith("_empty")]
    return paths[-1] if paths else ""


def unsupported_ops(gm: torch.fx.GraphModule) -> list[tuple[str, str]]:
    """Every call in ``gm`` and its submodules with no translation, with its module path."""
    missing = []
    for _, module in gm.named_modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op == "call_function" and node.target is not operator.getitem:
                key = op_key(node.target)
                if key not in ATEN:
                    missing.append((key, module_path(node) or node.name))
    return missing


class Translator:
    """Translates one ExportedProgram; holds the name pool and the symbol map.

    Args:
        ep: the program, already decomposed to the ops to translate.
        input_names: names for the user inputs, in order (defaults: the placeholder names).
        symbols: the user's names for dynamic dims, by the export's symbol (``s0``).
        output_names: names for the user outputs, in order.
    """

    def __init__(
        self,
        ep: torch.export.ExportedProgram,
        input_names: Sequence[str],
        symbols: dict[str, str],
        output_names: Sequence[str],
    ) -> None:
        self.ep = ep
        self.input_names = list(input_names)
        self.symbols = symbols
        self.output_names = list(output_names)
        self._used: dict[str, int] = {}
        self.main_graph: ir.Graph | None = None
        self.superseded: list[ir.Value] = []  # weights a translation repacked into new initializers

    # ---- names, types -----------------------------------------------------

    def fresh(self, base: str) -> str:
        """A name not used before in this model (``base``, ``base_1``, ...)."""
        n = self._used.get(base)
        if n is None:
            self._used[base] = 0
            return base
        while True:
            n += 1
            name = f"{base}_{n}"
            if name not in self._used:
                self._used[base] = n
                self._used[name] = 0
                return name

    def dim(self, d: Any) -> int | ir.SymbolicDim:
        """An IR dim from an int or SymInt; symbols are renamed to the user's names."""
        if isinstance(d, int):
            return d
        expr = d.node.expr
        if expr.is_Integer:
            return int(expr)
        if isinstance(expr, sympy.Symbol):
            return ir.SymbolicDim(self.symbols.get(expr.name, expr.name))
        renamed = expr.subs({s: sympy.Symbol(self.symbols.get(s.name, s.name)) for s in expr.free_symbols})
        return ir.SymbolicDim(str(renamed))

    def dtype_of(self, val: Any) -> ir.DataType:
        """The IR dtype of a FakeTensor, SymInt/SymFloat/SymBool or Python scalar."""
        if isinstance(val, torch.Tensor):
            return from_torch_dtype(val.dtype)
        if isinstance(val, bool | torch.SymBool):
            return ir.DataType.BOOL
        if isinstance(val, int | torch.SymInt):
            return ir.DataType.INT64
        if isinstance(val, float | torch.SymFloat):
            return ir.DataType.DOUBLE
        raise TypeError(f"no IR dtype for {type(val).__name__}")

    def set_type(self, value: ir.Value, val: Any) -> None:
        """Give ``value`` the dtype and shape of ``val`` (a node's ``meta["val"]``)."""
        if val is None:
            return
        value.dtype = self.dtype_of(val)
        value.shape = ir.Shape([self.dim(d) for d in val.shape]) if isinstance(val, torch.Tensor) else ir.Shape([])

    # ---- the walk --------------------------------------------------------------

    def run(self) -> ir.Model:
        """Translate the program into a model."""
        missing = unsupported_ops(self.ep.graph_module)
        if missing:
            raise UnsupportedOpsError("PyTorch", missing)
        graph = ir.Graph([], [], nodes=[], opset_imports={"": ir.DEFAULT_OPSET}, name="main_graph")
        self.main_graph = graph
        bindings = self._placeholders(graph)
        emitter = Emitter(self, graph)
        results = self.walk(self.ep.graph_module, bindings, emitter)
        specs = self.ep.graph_signature.output_specs
        user = [r for r, s in zip(results, specs, strict=True) if s.kind == OutputKind.USER_OUTPUT]
        for i, value in enumerate(user):
            name = self.output_names[i] if i < len(self.output_names) else f"output_{i}"
            graph.outputs.append(self._as_output(value, name, emitter))
        self._drop_superseded(graph)
        return ir.Model(graph, ir_version=10, producer_name="crossgraph")

    def _drop_superseded(self, graph: ir.Graph) -> None:
        """Remove the initializers in :attr:`superseded` that nothing uses any more."""
        for value in self.superseded:
            if value.is_initializer() and not value.uses() and not value.is_graph_output():
                graph.initializers.pop(value.name, None)

    def _placeholders(self, graph: ir.Graph) -> list[ir.Value]:
        """Graph inputs and initializers for the program's placeholders, in order."""
        bindings = []
        user_index = 0
        placeholders = [n for n in self.ep.graph.nodes if n.op == "placeholder"]
        for node, spec in zip(placeholders, self.ep.graph_signature.input_specs, strict=True):
            val = node.meta.get("val")
            if spec.kind in _WEIGHT_KINDS:
                tensor = self._weight(spec.target)
                value = ir.Value(name=self.fresh(spec.target), const_value=TorchTensor(tensor))
                self.set_type(value, tensor)
                graph.register_initializer(value)
            elif spec.kind == InputKind.USER_INPUT:
                if not isinstance(val, torch.Tensor):
                    raise InputError(f"input {node.name!r} is a {type(val).__name__}, not a tensor", "only tensor inputs are supported")
                names = self.input_names
                value = ir.Value(name=self.fresh(names[user_index] if user_index < len(names) else node.name))
                self.set_type(value, val)
                graph.inputs.append(value)
                user_index += 1
            else:
                raise InputError(f"unsupported program input {node.name!r} of kind {spec.kind.name}")
            bindings.append(value)
        return bindings

    def _weight(self, target: str) -> torch.Tensor:
        if target in self.ep.state_dict:
            return self.ep.state_dict[target].detach()
        return self.ep.constants[target].detach()

    def walk(self, gm: torch.fx.GraphModule, bindings: list[Any], emitter: Emitter) -> list[Any]:
        """Translate ``gm``'s nodes into ``emitter.graph``; returns its flattened outputs."""
        env: dict[torch.fx.Node, Any] = {}
        placeholders = iter(bindings)
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = next(placeholders)
            elif node.op == "get_attr":
                env[node] = self._get_attr(gm, node, emitter)
            elif node.op == "call_function":
                env[node] = self._call(node, env, emitter)
            elif node.op == "output":
                return _as_list(torch.fx.node.map_arg(node.args[0], lambda n: env[n]))
        raise ValueError("the FX graph has no output node")

    def _get_attr(self, gm: torch.fx.GraphModule, node: torch.fx.Node, emitter: Emitter) -> Any:
        obj = gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, torch.Tensor):
            value = ir.Value(name=self.fresh(node.target), const_value=TorchTensor(obj.detach()))
            self.set_type(value, obj)
            self.main_graph.register_initializer(value)
            return value
        return obj

    def _call(self, node: torch.fx.Node, env: dict[torch.fx.Node, Any], emitter: Emitter) -> Any:
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        if node.target is operator.getitem:
            return args[0][args[1]]
        emitter.begin(node, module_path(node))
        result = ATEN.lookup(op_key(node.target))(emitter, *args, **kwargs)
        made = {id(v) for n in emitter.made for v in n.outputs}
        val = node.meta.get("val")
        if isinstance(result, ir.Value):
            self._finish(result, val, made)
        elif isinstance(result, list | tuple):
            vals = val if isinstance(val, list | tuple) else [None] * len(result)
            for r, v in zip(result, vals, strict=False):
                if isinstance(r, ir.Value):
                    self._finish(r, v, made)
        return result

    def _finish(self, value: ir.Value, val: Any, made: set[int]) -> None:
        """Type a translation's new output from ``val`` (values passed through keep theirs)."""
        if id(value) not in made:
            return
        self.set_type(value, val)

    def _as_output(self, value: Any, name: str, emitter: Emitter) -> ir.Value:
        """``value`` renamed ``name`` as a graph output (through Identity where it must be)."""
        emitter.node, emitter.source = None, name
        if not isinstance(value, ir.Value):
            value = emitter.const(value)
        if value.is_graph_input() or value.is_initializer() or value.is_graph_output():
            out = emitter.op("Identity", value)
            out.dtype, out.shape = value.dtype, value.shape
            value = out
        value.name = name
        self._used.setdefault(name, 0)
        return value

    def subgraph(
        self, gm: torch.fx.GraphModule, bindings: Sequence[Any], inputs: Sequence[ir.Value], *, name: str, source: str
    ) -> ir.Graph:
        """A new graph holding ``gm``'s nodes (an If branch)."""
        graph = ir.Graph(list(inputs), [], nodes=[], name=name)
        emitter = Emitter(self, graph)
        outputs = self.walk(gm, list(bindings), emitter)
        self._seal(graph, emitter, outputs, _output_metas(gm), source)
        return graph

    def loop_body(
        self, body_fn: torch.fx.GraphModule, cond_fn: torch.fx.GraphModule, inputs: Sequence[ir.Value],
        captured: Sequence[ir.Value], *, source: str,
    ) -> ir.Graph:
        """A Loop body: ``(iteration, cond, *states) -> (cond_fn(body_fn(states)), *body_fn(states))``."""
        graph = ir.Graph(list(inputs), [], nodes=[], name=self.fresh("loop_body"))
        emitter = Emitter(self, graph)
        states = self.walk(body_fn, [*inputs[2:], *captured], emitter)
        keep_going = self.walk(cond_fn, [*states, *captured], emitter)[0]
        keep_going = emitter.cast(keep_going, ir.DataType.BOOL)
        metas = [keep_going, *_output_metas(body_fn)]
        self._seal(graph, emitter, [keep_going, *states], metas, source)
        return graph

    def _seal(self, graph: ir.Graph, emitter: Emitter, outputs: list[Any], metas: list[Any], source: str) -> None:
        """Make ``outputs`` the subgraph's outputs, each produced inside it (Identity if not)."""
        for value, meta in zip(outputs, metas, strict=True):
            emitter.node, emitter.source = None, source
            if not isinstance(value, ir.Value):
                value = emitter.const(value)
            elif value.producer() is None or value.producer().graph is not graph or value.is_graph_output():
                out = emitter.op("Identity", value)
                if isinstance(meta, ir.Value):
                    out.dtype, out.shape = meta.dtype, meta.shape
                else:
                    self.set_type(out, meta)
                value = out
            graph.outputs.append(value)


def _output_metas(gm: torch.fx.GraphModule) -> list[Any]:
    output = next(n for n in gm.graph.nodes if n.op == "output")
    return [a.meta.get("val") if isinstance(a, torch.fx.Node) else a for a in _as_list(output.args[0])]


def _as_list(result: Any) -> list[Any]:
    return list(result) if isinstance(result, list | tuple) else [result]
