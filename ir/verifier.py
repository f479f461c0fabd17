"""``verify(model)``: structural checks of an IR model against ``onnx.defs``.

Checks, recursively through If/Loop/Scan bodies and local functions:

1. every node input is defined before use (graph input, initializer, an earlier
   node's output, or a value of an enclosing graph defined before the node that
   owns the subgraph); a use of a later value is reported as a cycle when the
   graph cannot be ordered at all;
2. a subgraph only captures values of its enclosing scopes;
3. every op of a domain ``onnx.defs`` knows has a schema at the model's opset;
   its input and output counts fit the schema's arity; every attribute is one the
   schema declares, with the declared type; required attributes are present;
4. known dtypes satisfy the schema's type constraints, and inputs/outputs that
   share a type variable agree.

A failure raises :class:`VerificationError` listing every problem, with the nodes
around the first one.
"""

from __future__ import annotations

import dataclasses

import onnx
import onnx.defs
import onnx_ir

_CONTEXT = 3


@dataclasses.dataclass
class Problem:
    """One finding: which node (in which graph), and what is wrong."""

    graph: onnx_ir.Graph | onnx_ir.Function
    index: int
    message: str


class VerificationError(ValueError):
    """The model breaks a structural rule. ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(_format(problems))


def verify(model: onnx_ir.Model, *, schemas: bool = True) -> None:
    """Check ``model`` and raise :class:`VerificationError` if anything is wrong.

    Args:
        model: the model to check; it is not modified.
        schemas: also check ops against ``onnx.defs`` (rules 3 and 4); ``False``
            checks only the graph structure (order, definitions, captures).

    Raises:
        VerificationError: one or more problems; the message names each one and
            shows the nodes around the first.

    Example:
        >>> import onnx_ir
        >>> m = onnx_ir.from_onnx_text('''<ir_version: 10, opset_import: ["" : 21]>
        ...   g (float[2] x) => (float[2] y) { y = Relu(x) }''')
        >>> verify(m)
    """
    v = _Verifier(model, schemas=schemas)
    v.check_graph(model.graph, outer=set(), opsets=model.opset_imports)
    for func in model.functions.values():
        opsets = {**model.opset_imports, **func.opset_imports}
        v.check_graph(func, outer=set(), opsets=opsets)
    if v.problems:
        raise VerificationError(v.problems)


class _Verifier:
    def __init__(self, model: onnx_ir.Model, *, schemas: bool = True) -> None:
        self.model = model
        self.schemas = schemas
        self.problems: list[Problem] = []

    def report(self, graph, index: int, message: str) -> None:
        self.problems.append(Problem(graph, index, message))

    def check_graph(self, graph, outer: set[onnx_ir.Value], opsets: dict[str, int]) -> None:
        defined: set[onnx_ir.Value] = set(graph.inputs)
        if isinstance(graph, onnx_ir.Graph):
            defined.update(graph.initializers.values())
        in_graph = {out for node in graph for out in node.outputs}
        later_use = False
        for index, node in enumerate(graph):
            for i, value in enumerate(node.inputs):
                if value is None or value in defined or value in outer:
                    continue
                label = f"input {i} ({value.name!r}) of {_label(node)}"
                if value in in_graph:
                    later_use = True
                    self.report(graph, index, f"{label} is used before the node that defines it")
                else:
                    self.report(graph, index, f"{label} is not defined in this graph or an enclosing scope")
            if self.schemas:
                self.check_schema(graph, index, node, opsets)
            for attr in node.attributes.values():
                for sub in _subgraphs(attr):
                    self.check_graph(sub, outer | defined, opsets)
            defined.update(node.outputs)
        for value in graph.outputs:
            if value not in defined and value not in outer:
                self.report(graph, len(graph) - 1, f"graph output {value.name!r} is never defined")
        if later_use:
            cycle = _find_cycle(graph)
            if cycle:
                names = " -> ".join(_label(n) for n in cycle)
                self.report(graph, list(graph).index(cycle[0]), f"cycle: {names}")

    def check_schema(self, graph, index: int, node: onnx_ir.Node, opsets: dict[str, int]) -> None:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if (node.domain, node.op_type, node.overload) in self.model.functions:
            return
        version = opsets.get(domain, opsets.get("ai.onnx") if domain == "" else None)
        if version is None:
            if domain in _onnx_domains():
                self.report(graph, index, f"{_label(node)}: domain {domain or 'ai.onnx'!r} is not imported by the model")
            return
        try:
            schema = onnx.defs.get_schema(node.op_type, version, domain)
        except onnx.defs.SchemaError:
            if domain in _onnx_domains():
                self.report(graph, index, f"{_label(node)}: no operator {node.op_type!r} in {domain or 'ai.onnx'} opset {version}")
            return
        n_in = len(node.inputs)
        if not schema.min_input <= n_in <= schema.max_input:
            self.report(graph, index, f"{_label(node)}: {n_in} inputs, {node.op_type}-{schema.since_version} takes {_arity(schema.min_input, schema.max_input)}")
        n_out = len(node.outputs)
        if not schema.min_output <= n_out <= schema.max_output:
            self.report(graph, index, f"{_label(node)}: {n_out} outputs, {node.op_type}-{schema.since_version} gives {_arity(schema.min_output, schema.max_output)}")
        for name, attr in node.attributes.items():
            decl = schema.attributes.get(name)
            if decl is None:
                self.report(graph, index, f"{_label(node)}: unknown attribute {name!r} (known: {', '.join(sorted(schema.attributes)) or 'none'})")
            elif not attr.is_ref() and int(attr.type) != int(decl.type):
                self.report(graph, index, f"{_label(node)}: attribute {name!r} is {attr.type.name}, the schema wants {onnx.defs.OpSchema.AttrType(decl.type).name}")
        for name, decl in schema.attributes.items():
            if decl.required and name not in node.attributes:
                self.report(graph, index, f"{_label(node)}: required attribute {name!r} is missing")
        self.check_types(graph, index, node, schema)

    def check_types(self, graph, index: int, node: onnx_ir.Node, schema) -> None:
        allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
        bound: dict[str, tuple[str, str]] = {}
        for kind, params, values in (("input", schema.inputs, node.inputs), ("output", schema.outputs, node.outputs)):
            for i, value in enumerate(values):
                if value is None or not params:
                    continue
                param = params[min(i, len(params) - 1)]
                if i >= len(params) and param.option != onnx.defs.OpSchema.FormalParameterOption.Variadic:
                    continue
                type_str = _type_string(value.type)
                if type_str is None:
                    continue
                tv = param.type_str
                if tv in allowed:
                    if type_str not in allowed[tv]:
                        self.report(graph, index, f"{_label(node)}: {kind} {i} ({value.name!r}) is {type_str}, {tv} allows {', '.join(sorted(allowed[tv]))}")
                        continue
                    homogeneous = param.is_homogeneous if param.option == onnx.defs.OpSchema.FormalParameterOption.Variadic else True
                    if tv in bound and bound[tv][0] != type_str and homogeneous:
                        self.report(graph, index, f"{_label(node)}: {kind} {i} ({value.name!r}) is {type_str} but {bound[tv][1]} is {bound[tv][0]} (both {tv})")
                    bound.setdefault(tv, (type_str, f"{kind} {i}"))
                elif tv.startswith(("tensor(", "seq(", "optional(")) and tv != type_str:
                    self.report(graph, index, f"{_label(node)}: {kind} {i} ({value.name!r}) is {type_str}, the schema wants {tv}")


def _onnx_domains() -> set[str]:
    return {"", "ai.onnx.ml", "ai.onnx.preview.training"}


def _arity(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    return f"{lo} or more" if hi > 1000 else f"{lo} to {hi}"


def _subgraphs(attr) -> list[onnx_ir.Graph]:
    if attr.is_ref():
        return []
    if attr.type == onnx_ir.AttributeType.GRAPH:
        return [attr.value]
    if attr.type == onnx_ir.AttributeType.GRAPHS:
        return list(attr.value)
    return []


def _type_string(t) -> str | None:
    if t is None:
        return None
    if isinstance(t, onnx_ir.TensorType):
        return None if t.dtype == onnx_ir.DataType.UNDEFINED else f"tensor({t.dtype.name.lower()})"
    if isinstance(t, onnx_ir.SparseTensorType):
        return f"sparse_tensor({t.dtype.name.lower()})"
    if isinstance(t, onnx_ir.SequenceType):
        inner = _type_string(t.elem_type)
        return None if inner is None else f"seq({inner})"
    if isinstance(t, onnx_ir.OptionalType):
        inner = _type_string(t.elem_type)
        return None if inner is None else f"optional({inner})"
    return None


def _find_cycle(graph) -> list[onnx_ir.Node]:
    """A list of nodes forming a cycle through producer edges, or []."""
    nodes = list(graph)
    members = set(nodes)
    state: dict[onnx_ir.Node, int] = {}
    stack: list[onnx_ir.Node] = []

    def visit(node: onnx_ir.Node) -> list[onnx_ir.Node]:
        state[node] = 1
        stack.append(node)
        for value in node.inputs:
            prod = value.producer() if value is not None else None
            if prod is None or prod not in members:
                continue
            if state.get(prod) == 1:
                return stack[stack.index(prod):]
            if prod not in state:
                found = visit(prod)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in nodes:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _label(node: onnx_ir.Node) -> str:
    name = node.metadata_props.get("crossgraph.source_name") or node.name
    return f"{node.op_type} node {name!r}" if name else f"{node.op_type} node"


def _short(node: onnx_ir.Node) -> str:
    ins = ", ".join("" if v is None else f"%{v.name}" for v in node.inputs)
    outs = ", ".join(f"%{v.name}" for v in node.outputs)
    text = f"{outs} = {node.op_type}({ins})"
    return text if len(text) < 160 else text[:157] + "..."


def _format(problems: list[Problem]) -> str:
    lines = [f"IR verification failed: {len(problems)} problem(s)"]
    for p in problems[:20]:
        lines.append(f"  - {p.message}")
    if len(problems) > 20:
        lines.append(f"  ... and {len(problems) - 20} more")
    first = problems[0]
    nodes = list(first.graph)
    if nodes:
        graph_name = getattr(first.graph, "name", None) or "graph"
        lines.append(f"around the first problem (graph {graph_name!r}):")
        lo, hi = max(0, first.index - _CONTEXT), min(len(nodes), first.index + _CONTEXT + 1)
        for i in range(lo, hi):
            mark = ">>" if i == first.index else "  "
            lines.append(f"  {mark} {i:4d}  {_short(nodes[i])}")
    return "\n".join(lines)
