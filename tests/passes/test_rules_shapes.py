"""The rules and passes that brought -O2 level with onnxsim/onnxslim on the transformers.

Each rewrite is checked three ways: it fires on the graph shape exporters
emit, it leaves alone what it must not touch, and the optimized model gives
onnxruntime's outputs for the original (``optimize_and_compare``: every pass
verified, outputs within 1e-5).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnxscript.rewriter import RewritePass
from passes_testing import op_types, optimize_and_compare, random_feeds, run_ort

import ir
import passes
from passes.folding import FoldConstantsPass
from passes.initializer_inputs import InitializerInputsPass
from passes.parallel_matmul import MergeParallelMatMulsPass
from passes.rules.noop import noop_rules
from passes.rules.shapes import shape_rules
from passes.shape_inference import ShapeInferencePass

HEAD = '<ir_version: 10, opset_import: ["" : 21]>\n'


def _model(signature: str, body: str) -> ir.Model:
    return ir.from_onnx_text(HEAD + f"{signature} {{ {body} }}")


# ---- passes.rules.shapes -----------------------------------------------------------


def test_scalar_gather_of_a_static_dim_folds_and_the_arithmetic_after_it():
    # torch's `d // heads` for x[batch, seq, 128]: Gather(Shape(x), 2) / 4 -> Reshape target.
    model = _model(
        "g (float[batch,seq,128] x) => (float[batch,seq,4,32] y)",
        """s = Shape(x)
           i0 = Constant<value: tensor = int64 {0}>()
           i1 = Constant<value: tensor = int64 {1}>()
           i2 = Constant<value: tensor = int64 {2}>()
           heads = Constant<value: tensor = int64 {4}>()
           zero = Constant<value: tensor = int64[1] {0}>()
           b = Gather<axis=0>(s, i0)
           t = Gather<axis=0>(s, i1)
           d = Gather<axis=0>(s, i2)
           hd = Div(d, heads)
           ub = Unsqueeze(b, zero)
           ut = Unsqueeze(t, zero)
           uh = Unsqueeze(heads, zero)
           ud = Unsqueeze(hd, zero)
           shape = Concat<axis=0>(ub, ut, uh, ud)
           y = Reshape(x, shape)""",
    )
    optimized, _ = optimize_and_compare(model, 1)
    kinds = op_types(optimized)
    assert "Div" not in kinds and kinds.count("Gather") == 2  # batch and seq stay symbolic


def test_gather_of_shape_rule_alone_one_d_indices_and_shape_start():
    model = _model(
        "g (float[2,3,4,5] x) => (int64[2] y)",
        "s = Shape<start=1>(x) i = Constant<value: tensor = int64[2] {2,-3}>() y = Gather(s, i)",
    )
    assert RewritePass(shape_rules())(model).modified
    node = model.graph.outputs[0].producer()
    assert node.op_type == "Constant" and node.attributes["value"].value.numpy().tolist() == [5, 3]


def test_gather_of_shape_leaves_symbolic_dims_and_other_axes():
    symbolic = _model(
        "g (float[n,3] x) => (int64 y)",
        "s = Shape(x) i = Constant<value: tensor = int64 {0}>() y = Gather(s, i)",
    )
    not_shape = _model(
        "g (int64[3] s) => (int64 y)", "i = Constant<value: tensor = int64 {0}>() y = Gather(s, i)"
    )
    for model in (symbolic, not_shape):
        assert not RewritePass(shape_rules())(model).modified


def test_gather_elements_of_constants_folds_where_onnx_reference_fails():
    # data[1, 8] with indices[1, 3]: onnx.reference raises on this; numpy's result is checked by ORT.
    model = _model(
        "g (float[1,3] x) => (float[1,3] y)",
        """data = Constant<value: tensor = int64[1,8] {7,6,5,4,3,2,1,0}>()
           idx = Constant<value: tensor = int64[1,3] {0,-1,2}>()
           picked = GatherElements<axis=1>(data, idx)
           f = Cast<to=1>(picked)
           y = Add(x, f)""",
    )
    optimized, _ = optimize_and_compare(model, 1)
    assert op_types(optimized) == ["Add"]


def test_gather_elements_with_out_of_range_index_is_left():
    model = _model(
        "g (float[1] x) => (int64[1,1] y)",
        """data = Constant<value: tensor = int64[1,2] {1,2}>()
           idx = Constant<value: tensor = int64[1,1] {5}>()
           y = GatherElements<axis=1>(data, idx)""",
    )
    assert not RewritePass(shape_rules())(model).modified


# ---- passes.rules.noop additions -----------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "body"),
    [
        (
            "(float[2,3,4] x) => (float[2,3,4] y)",
            "b = Constant<value: tensor = float[4] {0,0,0,0}>() y = Add(b, x)",
        ),
        (
            "(float[2,3,4] x) => (float[2,3,4] y)",
            "b = Constant<value: tensor = float[3,1] {0,0,0}>() y = Sub(x, b)",
        ),
        (
            "(float[n,3,4] x) => (float[n,3,4] y)",
            "s = Constant<value: tensor = float[1,4] {1,1,1,1}>() y = Mul(x, s)",
        ),
        (
            "(float[2,3,4] x) => (float[2,3,4] y)",
            "s = Constant<value: tensor = float[4] {1,1,1,1}>() y = Div(x, s)",
        ),
        (
            "(float[1,4,17,32] x) => (float[1,4,17,32] y)",
            "s = Constant<value: tensor = int64[4] {1,-1,17,32}>() y = Reshape(x, s)",
        ),
        (
            "(float[n,3,4] x) => (float[n,3,4] y)",
            "s = Constant<value: tensor = int64[3] {0,-1,4}>() y = Reshape(x, s)",
        ),
    ],
    ids=[
        "add-zero-bias-left",
        "sub-zeros",
        "mul-ones-symbolic",
        "div-ones",
        "reshape-minus-one",
        "reshape-zero-copy",
    ],
)
def test_noop_additions_remove_the_op_with_same_numerics(signature, body):
    model = _model(f"g {signature}", body.replace("y = ", "t = ") + " y = Relu(t)")
    optimized, _ = optimize_and_compare(model, 1)
    assert op_types(optimized) == ["Relu"]
    assert optimized.graph.node(0).inputs[0] is optimized.graph.inputs[0]


@pytest.mark.parametrize(
    ("signature", "body"),
    [
        # the zeros broadcast x up: [3] + [2,3] is [2,3], not x's shape
        (
            "(float[3] x) => (float[2,3] y)",
            "b = Constant<value: tensor = float[2,3] {0,0,0,0,0,0}>() y = Add(x, b)",
        ),
        (
            "(float[n,4] x) => (float[n,4] y)",
            "b = Constant<value: tensor = float[4] {0,1,0,0}>() y = Add(x, b)",
        ),
        (
            "(float[n,4] x) => (float[n,4] y)",
            "s = Constant<value: tensor = float[4] {1,1,1,1}>() y = Sub(s, x)",
        ),
        (
            "(float[n,1] x) => (float[n,4] y)",
            "s = Constant<value: tensor = float[4] {1,1,1,1}>() y = Mul(x, s)",
        ),
        (
            "(float[2,6] x) => (float[3,4] y)",
            "s = Constant<value: tensor = int64[2] {3,-1}>() y = Reshape(x, s)",
        ),
        (
            "(float[n,m] x) => (float[n,m] y)",
            "s = Constant<value: tensor = int64[2] {-1,-1}>() y = Reshape(x, s)",
        ),
    ],
    ids=[
        "broadcast-grows-x",
        "not-all-zeros",
        "zeros-minus-x",
        "mul-broadcasts-dim",
        "real-reshape",
        "two-unknowns",
    ],
)
def test_noop_additions_leave_real_work_alone(signature, body):
    model = _model(f"g {signature}", body)
    assert not RewritePass(noop_rules())(model).modified


def test_dropout_of_opset_9_with_unused_mask_is_removed():
    model = ir.from_onnx_text(
        '<ir_version: 4, opset_import: ["" : 9]>\n'
        "g (float[2,3] x) => (float[2,3] y) { d, mask = Dropout<ratio=0.5>(x) y = Relu(d) }"
    )
    optimized, _ = optimize_and_compare(model, 1)
    assert op_types(optimized) == ["Relu"]


def test_dropout_in_training_mode_or_with_used_mask_stays():
    training = _model(
        "g (float[2,3] x) => (float[2,3] y)",
        "r = Constant<value: tensor = float {0.5}>() t = Constant<value: tensor = bool {1}>() y = Dropout(x, r, t)",
    )
    mask_used = _model("g (float[2,3] x) => (float[2,3] y, bool[2,3] m)", "y, m = Dropout(x)")
    for model in (training, mask_used):
        assert not RewritePass(noop_rules())(model).modified


# ---- passes.folding ----------------------------------------------------------------


def test_exporter_expand_shape_computed_with_constant_of_shape_folds_away():
    # BERT's token_type_ids buffer: Expand(buffer, Where(Equal(s, -1), ConstantOfShape(...), s)).
    model = _model(
        "g (float[1,4] x) => (float[1,4] y)",
        """buf = Constant<value: tensor = float[1,4] {1,2,3,4}>()
           s = Constant<value: tensor = int64[2] {1,-1}>()
           n = Constant<value: tensor = int64[1] {2}>()
           ones = ConstantOfShape<value: tensor = int64[1] {1}>(n)
           m1 = Constant<value: tensor = int64 {-1}>()
           neg = Mul(ones, m1)
           eq = Equal(s, neg)
           shape = Where(eq, ones, s)
           e = Expand(buf, shape)
           y = Add(x, e)""",
    )
    optimized, _ = optimize_and_compare(model, 1)
    assert op_types(optimized) == ["Add"]


def test_constant_of_shape_above_the_size_cap_is_kept():
    model = _model(
        "g (float[64,64] x) => (float[64,64] y)",
        """n = Constant<value: tensor = int64[2] {64,64}>()
           z = ConstantOfShape<value: tensor = float[1] {2}>(n)
           y = Mul(x, z)""",
    )
    small_cap = 64 * 64 * 4 - 4
    passes.optimize(model, 1, size_cap_bytes=small_cap, on_error="raise")
    assert "ConstantOfShape" in op_types(model)
    FoldConstantsPass(size_limit=64 * 64)(model)
    assert "ConstantOfShape" not in op_types(model)


# ---- passes.shape_inference ----------------------------------------------------------


def test_shape_inference_keeps_named_dims_and_types_through_big_weights():
    w = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)  # 6.4 kB: sent without its data
    x = ir.Value(name="x", shape=ir.Shape(["batch", 40]), type=ir.TensorType(ir.DataType.FLOAT))
    weight = ir.Value(name="w", const_value=ir.tensor(w, name="w"))
    matmul = ir.node("MatMul", [x, weight])
    relu = ir.node("Relu", [matmul.outputs[0]])
    graph = ir.Graph([x], [relu.outputs[0]], nodes=[matmul, relu], initializers=[weight],
                     opset_imports={"": 21})  # fmt: skip
    model = ir.Model(graph, ir_version=10)
    assert ShapeInferencePass()(model).modified
    out = relu.outputs[0]
    assert [str(d) for d in out.shape] == ["batch", "40"] and out.dtype == ir.DataType.FLOAT
    assert list(graph.initializers) == ["w"] and graph.initializers["w"].const_value is not None
    assert len(graph.inputs) == 1
    assert not ShapeInferencePass()(model).modified  # nothing left to learn


def test_shape_inference_reaches_into_subgraphs():
    model = _model(
        "g (bool c, float[2,3] x) => (float[2,3] y)",
        """y = If(c) <then_branch = t () => (float[2,3] a) { a = Relu(x) },
                      else_branch = e () => (float[2,3] b) { b = Neg(x) }>""",
    )
    ShapeInferencePass()(model)
    then_graph = model.graph.node(0).attributes["then_branch"].value
    assert list(then_graph.node(0).outputs[0].shape) == [2, 3]


# ---- passes.initializer_inputs --------------------------------------------------------


def test_ir3_initializers_listed_as_inputs_become_constants_and_fold():
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    s = onnx.helper.make_tensor_value_info("s", onnx.TensorProto.INT64, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])
    nodes = [
        onnx.helper.make_node(
            "ConstantOfShape", ["s"], ["w"], value=onnx.helper.make_tensor("v", 1, [1], [3.0])
        ),
        onnx.helper.make_node("Mul", ["x", "w"], ["y"]),
    ]
    init = onnx.numpy_helper.from_array(np.array([2], dtype=np.int64), "s")
    proto = onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [x, s], [y], [init]), ir_version=3,
                                   opset_imports=[onnx.helper.make_opsetid("", 9)])  # fmt: skip
    model = ir.from_proto(proto)
    feeds = random_feeds(model)
    expected = run_ort(model, {"x": feeds["x"]})
    passes.optimize(model, 1, verify_each=True, on_error="raise")
    assert [v.name for v in model.graph.inputs] == ["x"] and model.ir_version == 4
    assert op_types(model) == ["Mul"]
    np.testing.assert_allclose(run_ort(model, {"x": feeds["x"]})[0], expected[0], rtol=1e-5)


def test_ir4_initializer_inputs_stay_overridable():
    model = _model(
        "g (float[2] x, float[2] b) => (float[2] y) <float[2] b = {1, 2}>", "y = Add(x, b)"
    )
    assert not InitializerInputsPass()(model).modified
    assert [v.name for v in model.graph.inputs] == ["x", "b"]


# ---- passes.parallel_matmul ----------------------------------------------------------


def _projections(with_bias: bool, count: int = 3) -> ir.Model:
    rng = np.random.default_rng(0)
    lines, outs = [], []
    for i in range(count):
        w = ",".join(f"{v:.4f}" for v in rng.standard_normal(8 * 4))
        lines.append(
            f"w{i} = Constant<value: tensor = float[8,4] {{{w}}}>() m{i} = MatMul(x, w{i})"
        )
        if with_bias:
            b = ",".join(f"{v:.4f}" for v in rng.standard_normal(4))
            lines.append(
                f"b{i} = Constant<value: tensor = float[4] {{{b}}}>() a{i} = Add(m{i}, b{i})"
            )
        outs.append(f"a{i}" if with_bias else f"m{i}")
    lines.append(f"y = Concat<axis=-1>({', '.join(f'Relu_{o}' for o in outs)})")
    body = (
        " ".join(lines[:-1])
        + " "
        + " ".join(f"Relu_{o} = Relu({o})" for o in outs)
        + " "
        + lines[-1]
    )
    return _model(f"g (float[batch,5,8] x) => (float[batch,5,{4 * count}] y)", body)


@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
def test_three_projections_of_one_input_become_one_matmul_and_a_split(with_bias):
    optimized, _ = optimize_and_compare(_projections(with_bias), 2)
    kinds = op_types(optimized)
    assert kinds.count("MatMul") == 1 and kinds.count("Split") == 1
    assert kinds.count("Add") == (1 if with_bias else 0)


def test_two_projections_or_a_shared_weight_are_left_alone():
    assert not MergeParallelMatMulsPass()(_projections(False, count=2)).modified
    shared = _model(
        "g (float[2,8] x, float[2,8] z) => (float[2,4] a, float[2,4] b, float[2,4] c, float[2,4] d)",
        """w = Constant<value: tensor = float[8,4] {1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8}>()
           v = Constant<value: tensor = float[8,4] {1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8}>()
           ma = MatMul(x, w) mb = MatMul(x, v) mc = MatMul(x, v) md = MatMul(z, w)
           a = Relu(ma) b = Relu(mb) c = Relu(mc) d = Relu(md)""",
    )
    assert not MergeParallelMatMulsPass()(shared).modified
