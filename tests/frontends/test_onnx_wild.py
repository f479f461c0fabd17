"""ONNX files as other tools write them: local functions, legacy opsets, odd structure.

Each model is written with ``onnx.helper`` the way an exporter does, converted to
TorchScript (at -O2), loaded back with plain ``torch.jit.load`` and compared with
onnxruntime on the original file.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import converter
import ir
from converter.frontends import onnx as onnx_frontend

torch = pytest.importorskip("torch")

F = TensorProto.FLOAT


def _tensor(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _random(name: str, *shape: int, seed: int = 0) -> TensorProto:
    return _tensor(name, np.random.default_rng(seed + len(name)).standard_normal(shape).astype(np.float32))


def _model(nodes, inputs, outputs, inits=(), *, opset: int, ir_version: int = 8, functions=(), domains=None):
    graph = helper.make_graph(nodes, "wild", inputs, outputs, list(inits))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    model = helper.make_model(graph, opset_imports=imports, functions=list(functions))
    model.ir_version = ir_version
    return model


def _assert_torchscript_matches_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray], tmp_path,
                                            atol: float = 1e-5) -> None:
    """Convert to .pt (with parity on), then compare the loaded module with onnxruntime ourselves."""
    src = tmp_path / "model.onnx"
    onnx.save(model, src)
    dst = tmp_path / "model.pt"
    converter.convert(src, dst, check=True)
    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feeds)
    module = torch.jit.load(str(dst))
    actual = module(*(torch.from_numpy(feeds[name]) for name in feeds))
    actual = actual if isinstance(actual, (tuple, list)) else [actual]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-5, atol=atol)


# --------------------------------------------------------------------------- local functions


def _ref(name: str, parent: str) -> onnx.AttributeProto:
    return onnx.AttributeProto(name=name, type=onnx.AttributeProto.FLOAT, ref_attr_name=parent)


def _functions_model() -> onnx.ModelProto:
    """Dense(x) = ScaledTanh(MatMul(x, w), alpha=0.2); ScaledTanh reads ``alpha`` by attribute reference."""
    leaky = helper.make_node("LeakyRelu", ["t"], ["l"])
    leaky.attribute.append(_ref("alpha", "alpha"))
    constant = helper.make_node("Constant", [], ["a"])
    constant.attribute.append(_ref("value_float", "alpha"))
    scaled = helper.make_function(
        "local.fn", "ScaledTanh", ["x"], ["y"],
        [constant, helper.make_node("CastLike", ["a", "x"], ["alpha"]), helper.make_node("Tanh", ["x"], ["t"]), leaky,
         helper.make_node("Mul", ["l", "alpha"], ["y"])],
        [helper.make_opsetid("", 18)], attributes=["alpha"],
    )
    dense = helper.make_function(
        "local.fn", "Dense", ["x", "w"], ["y"],
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("ScaledTanh", ["h"], ["y"], domain="local.fn", alpha=0.2)],
        [helper.make_opsetid("", 18), helper.make_opsetid("local.fn", 1)],
    )
    nodes = [helper.make_node("Dense", ["x", "w"], ["h1"], domain="local.fn"),
             helper.make_node("Dense", ["h1", "w"], ["h2"], domain="local.fn"),
             helper.make_node("ScaledTanh", ["h2"], ["y"], domain="local.fn", alpha=0.05)]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 6])],
                  [helper.make_tensor_value_info("y", F, ["batch", 6])], [_random("w", 6, 6)], opset=18,
                  functions=[scaled, dense], domains={"local.fn": 1})


def test_local_functions_are_inlined_on_loading():
    model = onnx_frontend.load(_functions_model())
    assert not model.functions
    ops = sorted(node.op_type for node in model.graph)
    assert ops.count("MatMul") == 2 and ops.count("LeakyRelu") == 3 and all(n.domain == "" for n in model.graph)
    alphas = sorted(n.attributes["alpha"].as_float() for n in model.graph if n.op_type == "LeakyRelu")
    assert alphas == pytest.approx([0.05, 0.2, 0.2])


def test_model_calling_nested_local_functions_converts_to_torchscript(tmp_path):
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)}
    _assert_torchscript_matches_onnxruntime(_functions_model(), feeds, tmp_path)


def test_function_importing_another_default_opset_is_refused_clearly():
    model = _functions_model()
    model.opset_import[0].version = 17  # the functions import opset 18
    with pytest.raises(converter.CrossgraphError, match="local functions cannot be inlined"):
        onnx_frontend.load(model)


# --------------------------------------------------------------------------- legacy opsets


def test_opset7_batchnorm_spatial0_variadic_sum_max_and_topk_attribute(tmp_path):
    """Opset 7: BatchNormalization with spatial=0, Sum and Max of several inputs (version 6),
    Dropout with a mask output, TopK with a k attribute (version 1); IR version 3."""
    nodes = [
        helper.make_node("Add", ["x", "bias_hw"], ["a"]),
        helper.make_node("BatchNormalization", ["a", "s", "b", "mean", "var"], ["bn"], spatial=0),
        helper.make_node("Sum", ["bn", "a", "x"], ["su"]),
        helper.make_node("Max", ["su", "x", "a"], ["mx"]),
        helper.make_node("Dropout", ["mx"], ["d", "mask"], ratio=0.2),
        helper.make_node("Flatten", ["d"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], transB=1),
        helper.make_node("TopK", ["g"], ["values", "indices"], k=3, axis=1),
    ]
    chw = (2, 3, 4)
    inits = [_random("bias_hw", 3, 4), _random("s", *chw), _random("b", *chw), _random("mean", *chw),
             _tensor("var", np.random.default_rng(1).uniform(0.5, 1.5, chw).astype(np.float32)),
             _random("gw", 5, 24), _random("gb", 5)]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, ["batch", *chw])],
                   [helper.make_tensor_value_info("values", F, ["batch", 3]),
                    helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch", 3]),
                    helper.make_tensor_value_info("mask", F, ["batch", *chw])],
                   inits, opset=7, ir_version=3)
    model.graph.input.extend(helper.make_tensor_value_info(t.name, F, list(t.dims)) for t in model.graph.initializer)
    feeds = {"x": np.random.default_rng(2).standard_normal((2, *chw)).astype(np.float32)}
    _assert_torchscript_matches_onnxruntime(model, feeds, tmp_path)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.5, 1.5]])
def test_opset10_resize_runs_as_onnxruntime_does(mode, scales, tmp_path):
    nodes = [helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)]
    model = _model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 2, 4, 5])],
                   [helper.make_tensor_value_info("y", F, None)],
                   [_tensor("scales", np.array(scales, np.float32))], opset=10, ir_version=5)
    feeds = {"x": np.random.default_rng(3).standard_normal((2, 2, 4, 5)).astype(np.float32)}
    _assert_torchscript_matches_onnxruntime(model, feeds, tmp_path)


def test_legacy_batchnorm_spatial0_is_not_folded_into_conv():
    """A Conv followed by a spatial=0 BatchNormalization keeps both nodes through -O2."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], spatial=0)]
    inits = [_random("w", 2, 2, 1, 1)] + [_random(n, 2, 3, 3) for n in "sbm"]
    inits.append(_tensor("v", np.ones((2, 3, 3), np.float32)))
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [1, 2, 3, 3])],
                   [helper.make_tensor_value_info("y", F, [1, 2, 3, 3])], inits, opset=7, ir_version=4)
    loaded = onnx_frontend.load(model)
    converter.optimize(loaded, 2)
    assert [n.op_type for n in loaded.graph] == ["Conv", "BatchNormalization"]
    ir.verify(loaded)


# --------------------------------------------------------------------------- signatures


def _unknown_dims_model() -> onnx.ModelProto:
    """x -> MatMul(w: 6x3): the input's rank is known, its dims are not (neither size nor name)."""
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [helper.make_tensor_value_info("x", F, [None, 6])],
                   [helper.make_tensor_value_info("y", F, None)], [_random("w", 6, 3)], opset=17)
    model.graph.input[0].type.tensor_type.shape.dim[1].Clear()
    return model


def test_input_specs_fill_in_unknown_dims():
    model = onnx_frontend.load(_unknown_dims_model(), inputs=["x:batch x 6"])
    assert list(model.graph.inputs[0].shape) == [ir.SymbolicDim("batch"), 6]


@pytest.mark.parametrize(("spec", "message"), [
    ("x:batch x 6 x 1", "rank 3"),
    ("z:batch x 6", "no such input"),
])
def test_input_specs_contradicting_the_model_are_refused(spec, message):
    model = _unknown_dims_model()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 6
    with pytest.raises(converter.CrossgraphError, match=message):
        onnx_frontend.load(model, inputs=[spec])
    with pytest.raises(converter.CrossgraphError, match="fixes it to 6"):
        onnx_frontend.load(model, inputs=["x:batch x 5"])


# --------------------------------------------------------------------------- forms onnxruntime accepts


def _mlp(domain: str = "") -> onnx.ModelProto:
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], domain=domain),
             helper.make_node("Add", ["h", "b1"], ["hb"], domain=domain),
             helper.make_node("Relu", ["hb"], ["r"], domain=domain),
             helper.make_node("MatMul", ["r", "w2"], ["y"], domain=domain)]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 6])],
                  [helper.make_tensor_value_info("y", F, ["batch", 3])],
                  [_random("w1", 6, 8), _random("b1", 8), _random("w2", 8, 3)], opset=17)


_X6 = {"x": np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)}


def test_nodes_out_of_order_are_sorted(tmp_path):
    model = _mlp()
    nodes = list(model.graph.node)[::-1]
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    _assert_torchscript_matches_onnxruntime(model, _X6, tmp_path)


def test_cycle_is_still_refused():
    model = _mlp()
    model.graph.node[0].input[0] = "r"  # MatMul reads Relu's output, which depends on it
    with pytest.raises(converter.CrossgraphError, match="malformed graph"):
        onnx_frontend.load(model)


def test_default_domain_spelled_ai_onnx(tmp_path):
    model = _mlp("ai.onnx")
    model.opset_import[0].domain = "ai.onnx"
    loaded = onnx_frontend.load(model)
    assert loaded.opset_imports == {"": 17} and {n.domain for n in loaded.graph} == {""}
    _assert_torchscript_matches_onnxruntime(model, _X6, tmp_path)  # -O2 fuses MatMul+Add into Gemm of domain ""


@pytest.mark.parametrize("coordinates", [False, True])
def test_sparse_initializer_becomes_dense(coordinates, tmp_path):
    model = _mlp()
    dense = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w2"))
    linear = np.array([1, 7, 20], np.int64)
    indices = np.stack(np.unravel_index(linear, dense.shape), axis=1) if coordinates else linear
    sparse = helper.make_sparse_tensor(_tensor("w2", dense.reshape(-1)[linear]), _tensor("", indices), list(dense.shape))
    keep = [t for t in model.graph.initializer if t.name != "w2"]
    model.graph.ClearField("initializer")
    model.graph.initializer.extend(keep)
    model.graph.sparse_initializer.append(sparse)
    _assert_torchscript_matches_onnxruntime(model, _X6, tmp_path)


# --------------------------------------------------------------------------- spectral ops


def test_spectrogram_with_stft_window_and_dft_matches_onnxruntime(tmp_path):
    """A spectrogram as torch.stft exports it (HannWindow, STFT), plus a DFT-20 along time."""
    i64 = lambda name, v: _tensor(name, np.array(v, np.int64))  # noqa: E731
    nodes = [helper.make_node("HannWindow", ["size"], ["window"]),
             helper.make_node("STFT", ["signal", "step", "window"], ["spec"], onesided=1),
             helper.make_node("ReduceL2", ["spec", "last"], ["magnitude"], keepdims=0),
             helper.make_node("DFT", ["spec", "", "time"], ["over_time"], inverse=1),
             helper.make_node("BlackmanWindow", ["size"], ["blackman"], periodic=0)]
    model = _model(nodes, [helper.make_tensor_value_info("signal", F, ["batch", 64, 1])],
                   [helper.make_tensor_value_info("magnitude", F, None), helper.make_tensor_value_info("over_time", F, None),
                    helper.make_tensor_value_info("blackman", F, None)],
                   [i64("size", 16), i64("step", 4), i64("last", [-1]), i64("time", 1)], opset=20, ir_version=10)
    feeds = {"signal": np.random.default_rng(5).standard_normal((2, 64, 1)).astype(np.float32)}
    _assert_torchscript_matches_onnxruntime(model, feeds, tmp_path, atol=1e-4)


# --------------------------------------------------------------------------- detection heads


@pytest.mark.parametrize(("opset", "attrs"), [
    (10, {}),
    (16, {}),
    (16, {"coordinate_transformation_mode": "output_half_pixel", "sampling_ratio": 2}),
    (16, {"mode": "max", "sampling_ratio": 2}),
])
def test_roi_align_matches_onnxruntime(opset, attrs, tmp_path):
    """RoiAlign as torchvision's detection models export it (boxes partly outside the map too)."""
    nodes = [helper.make_node("RoiAlign", ["x", "rois", "batch"], ["y"], output_height=3, output_width=4,
                              spatial_scale=0.5, **attrs)]
    rois = np.array([[0, 0, 9, 9], [2.5, 1.5, 14, 7], [-3, 4, 5, 30], [6, 6, 6.5, 7]], np.float32)
    model = _model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 8, 10])],
                   [helper.make_tensor_value_info("y", F, None)],
                   [_tensor("rois", rois), _tensor("batch", np.array([0, 1, 1, 0], np.int64))], opset=opset)
    feeds = {"x": np.random.default_rng(6).standard_normal((2, 3, 8, 10)).astype(np.float32)}
    _assert_torchscript_matches_onnxruntime(model, feeds, tmp_path)
