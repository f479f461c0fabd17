"""Control flow in the generated TorchScript source: ``If``, ``Loop``, ``Scan``, ``SequenceMap`` inline.

``If`` becomes an ``if``/``else``, ``Loop`` a ``while`` loop, ``Scan`` a ``for``
loop over the scan axis and ``SequenceMap`` a ``for`` loop over its first sequence, each with its subgraph's nodes written in place (the
writer's :meth:`~converter.backends.torchscript_codegen.Writer.emit_graph`), so
that scripting keeps them dynamic. Values are read with ``w.arg`` (a constant may
be a buffer) and written with ``w.var``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import ir

if TYPE_CHECKING:
    from converter.backends.torchscript_codegen import Writer

_INT64_MAX = 9223372036854775807


def emit_if(w: Writer, node: ir.Node, indent: int) -> None:
    outs = [w.var(v) for v in node.outputs]
    w.emit(indent, f"if bool({w.arg(node.inputs[0])}):")
    for branch, header in (("then_branch", None), ("else_branch", "else:")):
        if header:
            w.emit(indent, header)
        graph = node.attributes[branch].value
        w.emit_graph(graph, indent + 1)
        for out, value in zip(outs, graph.outputs, strict=True):
            w.emit(indent + 1, f"{out} = {w.arg(value)}")


def emit_loop(w: Writer, node: ir.Node, indent: int) -> None:
    from converter.backends.torchscript_codegen import annotation

    body: ir.Graph = node.attributes["body"].value
    trip = node.inputs[0] if len(node.inputs) > 0 else None
    cond = node.inputs[1] if len(node.inputs) > 1 else None
    n_carried = len(node.inputs) - 2
    n_scan = len(body.outputs) - 1 - n_carried
    carried = [w.var(v) for v in node.outputs[:n_carried]]
    scans = [w.fresh("scan") for _ in range(n_scan)]
    i, limit, go = w.fresh("i"), w.fresh("trip"), w.fresh("cond")
    w.emit(indent, f"{limit} = {_INT64_MAX if trip is None else f'int({w.arg(trip)}.item())'}")
    w.emit(indent, f"{go} = {'True' if cond is None else f'bool({w.arg(cond)})'}")
    for out, init, value in zip(carried, node.inputs[2:], node.outputs[:n_carried], strict=True):
        w.emit(indent, f"{out}: {annotation(value)} = {w.arg(init)}")
    for s in scans:
        w.emit(indent, f"{s}: list[Tensor] = []")
    w.emit(indent, f"{i} = 0")
    w.emit(indent, f"while {go} and {i} < {limit}:")
    inner = indent + 1
    w.emit(inner, f"{w.var(body.inputs[0])} = torch.tensor({i}, dtype=torch.int64, device=_dev)")
    w.emit(inner, f"{w.var(body.inputs[1])} = torch.tensor({go}, device=_dev)")
    for value, out in zip(body.inputs[2:], carried, strict=True):
        w.emit(inner, f"{w.var(value)} = {out}")
    w.emit_graph(body, inner)
    w.emit(inner, f"{go} = bool({w.arg(body.outputs[0])})")
    for out, value in zip(carried, body.outputs[1 : 1 + n_carried], strict=True):
        w.emit(inner, f"{out} = {w.arg(value)}")
    for s, value in zip(scans, body.outputs[1 + n_carried :], strict=True):
        w.emit(inner, f"{s}.append({w.arg(value)})")
    w.emit(inner, f"{i} += 1")
    for s, value in zip(scans, node.outputs[n_carried:], strict=True):
        w.emit(indent, f"{w.var(value)} = torch.stack({s}) if len({s}) > 0 else torch.zeros([0], device=_dev)")


def emit_scan(w: Writer, node: ir.Node, indent: int) -> None:
    """Scan (opset 9+) as a ``for`` loop over the scan axis of its sequence inputs."""
    if w.opset < 9:
        emit_scan8(w, node, indent)
        return
    body: ir.Graph = node.attributes["body"].value
    attrs = {k: v for k, v in w.attributes(node).items() if k != "body"}
    m = attrs["num_scan_inputs"]
    n_state = len(node.inputs) - m
    n_out = len(body.outputs) - n_state
    in_axes = attrs.get("scan_input_axes") or [0] * m
    in_dirs = attrs.get("scan_input_directions") or [0] * m
    out_axes = attrs.get("scan_output_axes") or [0] * n_out
    out_dirs = attrs.get("scan_output_directions") or [0] * n_out
    states = [w.var(v) for v in node.outputs[:n_state]]
    for out, init in zip(states, node.inputs[:n_state], strict=True):
        w.emit(indent, f"{out} = {w.arg(init)}")
    seqs = []
    for value, axis, reverse in zip(node.inputs[n_state:], in_axes, in_dirs, strict=True):
        seq, src = w.fresh("seq"), w.arg(value)
        moved = f"torch.movedim({src}, {axis} % {src}.dim(), 0)"
        w.emit(indent, f"{seq} = {f'torch.flip({moved}, [0])' if reverse else moved}")
        seqs.append(seq)
    scans = [w.fresh("scan") for _ in range(n_out)]
    for s in scans:
        w.emit(indent, f"{s}: list[Tensor] = []")
    t = w.fresh("t")
    w.emit(indent, f"for {t} in range({seqs[0] + '.shape[0]' if seqs else '0'}):")
    inner = indent + 1
    for value, state in zip(body.inputs[:n_state], states, strict=True):
        w.emit(inner, f"{w.var(value)} = {state}")
    for value, seq in zip(body.inputs[n_state:], seqs, strict=True):
        w.emit(inner, f"{w.var(value)} = {seq}[{t}]")
    w.emit_graph(body, inner)
    for state, value in zip(states, body.outputs[:n_state], strict=True):
        w.emit(inner, f"{state} = {w.arg(value)}")
    for s, value in zip(scans, body.outputs[n_state:], strict=True):
        w.emit(inner, f"{s}.append({w.arg(value)})")
    for s, value, axis, reverse in zip(scans, node.outputs[n_state:], out_axes, out_dirs, strict=True):
        out = w.var(value)
        items = f"{s}[::-1]" if reverse else s
        w.emit(indent, f"{out} = torch.stack({items}) if len({s}) > 0 else torch.zeros([0], device=_dev)")
        w.emit(indent, f"{out} = torch.movedim({out}, 0, {axis} % {out}.dim())")


def emit_scan8(w: Writer, node: ir.Node, indent: int) -> None:
    """Scan-8 as two ``for`` loops: over the batch axis every input has, then over the steps
    (axis 1 of the scan inputs, or the batch entry's length when the first input gives them)."""
    body: ir.Graph = node.attributes["body"].value
    attrs = {k: v for k, v in w.attributes(node).items() if k != "body"}
    m = attrs["num_scan_inputs"]
    lengths, rest = node.inputs[0], list(node.inputs[1:])
    n_state = len(rest) - m
    n_out = len(body.outputs) - n_state
    reverse = attrs.get("directions") or [0] * m
    finals, scans = [w.fresh("final") for _ in range(n_state)], [w.fresh("scan") for _ in range(n_out)]
    for name in finals + scans:
        w.emit(indent, f"{name}: list[Tensor] = []")
    first = w.arg(rest[0])
    b, t, steps = w.fresh("b"), w.fresh("t"), w.fresh("steps")
    w.emit(indent, f"for {b} in range({first}.shape[0]):")
    inner = indent + 1
    seqs = [w.arg(v) for v in rest[n_state:]]
    if lengths is not None:
        w.emit(inner, f"{steps} = int({w.arg(lengths)}[{b}])")
    else:
        w.emit(inner, f"{steps} = {seqs[0]}.shape[1]" if seqs else f"{steps} = 0")
    states = [w.var(v) for v in body.inputs[:n_state]]
    for state, init in zip(states, rest[:n_state], strict=True):
        w.emit(inner, f"{state} = {w.arg(init)}[{b}]")
    items = []
    for seq, r in zip(seqs, reverse, strict=True):
        item = w.fresh("items")
        sliced = f"{seq}[{b}, :{steps}]"
        w.emit(inner, f"{item} = {f'torch.flip({sliced}, [0])' if r else sliced}")
        items.append(item)
    collected = [w.fresh("col") for _ in range(n_out)]
    for c in collected:
        w.emit(inner, f"{c}: list[Tensor] = []")
    w.emit(inner, f"for {t} in range({steps}):")
    step = inner + 1
    for value, item in zip(body.inputs[n_state:], items, strict=True):
        w.emit(step, f"{w.var(value)} = {item}[{t}]")
    w.emit_graph(body, step)
    for state, value in zip(states, body.outputs[:n_state], strict=True):
        w.emit(step, f"{state} = {w.arg(value)}")
    for c, value in zip(collected, body.outputs[n_state:], strict=True):
        w.emit(step, f"{c}.append({w.arg(value)})")
    for final, state in zip(finals, states, strict=True):
        w.emit(inner, f"{final}.append({state})")
    for s, c in zip(scans, collected, strict=True):
        w.emit(inner, f"{s}.append(torch.stack({c}) if len({c}) > 0 else torch.zeros([0], device=_dev))")
    for value, name in zip(node.outputs, finals + scans, strict=True):
        w.emit(indent, f"{w.var(value)} = torch.stack({name})")


def emit_sequence_map(w: Writer, node: ir.Node, indent: int) -> None:
    """SequenceMap (opset 17) as a ``for`` loop over its first input's items, appending each
    body output to its sequence. Further inputs typed as sequences give their item, others
    (tensors) themselves."""
    body: ir.Graph = node.attributes["body"].value
    if any(not isinstance(v.type, (ir.TensorType, type(None))) for v in body.outputs):
        raise NotImplementedError("the TorchScript back end generates SequenceMap bodies that return tensors only")
    outs = [w.var(v) for v in node.outputs]
    for out in outs:
        w.emit(indent, f"{out}: list[Tensor] = []")
    seq, t = w.arg(node.inputs[0]), w.fresh("t")
    w.emit(indent, f"for {t} in range(len({seq})):")
    inner = indent + 1
    w.emit(inner, f"{w.var(body.inputs[0])} = {seq}[{t}]")
    for value, outer in zip(body.inputs[1:], node.inputs[1:], strict=True):
        item = f"[{t}]" if isinstance(outer.type, ir.SequenceType) else ""
        w.emit(inner, f"{w.var(value)} = {w.arg(outer)}{item}")
    w.emit_graph(body, inner)
    for out, value in zip(outs, body.outputs, strict=True):
        w.emit(inner, f"{out}.append({w.arg(value)})")


CONTROL_FLOW: dict[str, Callable[[Writer, ir.Node, int], None]] = {
    "If": emit_if,
    "Loop": emit_loop,
    "Scan": emit_scan,
    "SequenceMap": emit_sequence_map,
}
