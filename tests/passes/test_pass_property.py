"""Property: -O2 preserves numerics on random small elementwise/transpose graphs."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passes_testing import optimize_and_compare

import ir

UNARY = ["Relu", "Neg", "Exp", "Sigmoid", "Abs"]
BINARY = ["Add", "Mul", "Sub", "Max"]
PERMS = list(itertools.permutations(range(3)))


@st.composite
def graphs(draw):
    """A chain over one float[2,3,4] input mixing unary, binary-with-constant and Transpose."""
    lines, shape, current, k = [], [2, 3, 4], "x", 0
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["unary", "binary", "transpose", "reduce"]))
        k += 1
        out = f"v{k}"
        if kind == "unary":
            lines.append(f"{out} = {draw(st.sampled_from(UNARY))}({current})")
        elif kind == "binary":
            values = draw(
                st.lists(st.floats(-2, 2, width=32), min_size=shape[-1], max_size=shape[-1])
            )
            const = ",".join(repr(float(v)) for v in values)
            lines.append(f"c{k} = Constant<value: tensor = float[{shape[-1]}] {{{const}}}>()")
            lines.append(f"{out} = {draw(st.sampled_from(BINARY))}({current}, c{k})")
        elif kind == "transpose":
            perm = draw(st.sampled_from(PERMS))
            lines.append(f"{out} = Transpose<perm={list(perm)}>({current})")
            shape = [shape[p] for p in perm]
        else:
            axis = draw(st.integers(0, 2))
            lines.append(f"{out} = ReduceMax<axes=[{axis}], keepdims=1>({current})")
            shape = [1 if i == axis else d for i, d in enumerate(shape)]
        current = out
    lines.append(f"y = Identity({current})")
    text = "g (float[2,3,4] x) => (float[?,?,?] y) {\n" + "\n".join(lines) + "\n}"
    return ir.from_onnx_text('<ir_version: 10, opset_import: ["" : 17]>\n' + text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_o2_preserves_numerics_on_random_graphs(model):
    with np.errstate(over="ignore"):
        optimize_and_compare(model, 2, rtol=1e-4, atol=1e-4)
