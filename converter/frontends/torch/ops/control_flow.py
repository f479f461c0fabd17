"""Higher-order ops: ``torch.cond`` -> If, ``torch._higher_order_ops.while_loop`` -> Loop.

- ``cond(pred, true_fn, false_fn, operands)``: each branch is translated into a
  subgraph that captures the operands from the enclosing graph.
- ``while_loop(cond_fn, body_fn, carried, additional)``: the condition is
  translated once before the loop (the initial condition) and once at the end
  of the body (the next one); the carried values are the Loop's state
  variables, the additional inputs are captured. No trip count (``M`` empty).
"""

from __future__ import annotations

from typing import Any

import ir
from converter.frontends.torch.emit import BOOL, INT64, Emitter
from converter.frontends.torch.ops import ATEN


@ATEN.register("higher_order::cond")
def cond(e: Emitter, pred: Any, true_fn: Any, false_fn: Any, operands: Any) -> tuple[ir.Value, ...]:
    operands = list(operands)
    then_branch = e.subgraph(true_fn, operands, name="then_branch")
    else_branch = e.subgraph(false_fn, operands, name="else_branch")
    n = len(then_branch.outputs)
    outs = e.op("If", e.operand(pred, BOOL), then_branch=then_branch, else_branch=else_branch, outputs=n)
    return outs if n > 1 else (outs,)


def _state(e: Emitter, like: ir.Value, base: str) -> ir.Value:
    value = ir.Value(name=e.translator.fresh(base), type=ir.TensorType(like.dtype), shape=like.shape)
    return value


@ATEN.register("higher_order::while_loop")
def while_loop(e: Emitter, cond_fn: Any, body_fn: Any, carried: Any, additional: Any) -> tuple[ir.Value, ...]:
    carried, additional = list(carried), list(additional)
    initial = e.translate_inline(cond_fn, carried + additional)[0]
    iteration = ir.Value(name=e.translator.fresh("iteration"), type=ir.TensorType(INT64), shape=ir.Shape([]))
    keep_going = ir.Value(name=e.translator.fresh("cond_in"), type=ir.TensorType(BOOL), shape=ir.Shape([]))
    states = [_state(e, c, "state") for c in carried]
    body = e.translator.loop_body(body_fn, cond_fn, [iteration, keep_going, *states], additional, source=e.source)
    outs = e.op("Loop", None, e.operand(initial, BOOL), *carried, body=body, outputs=len(carried))
    return outs if len(carried) > 1 else (outs,)
