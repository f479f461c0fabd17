"""TFLite target: any source -> IR -> SavedModel -> .tflite, run with LiteRT, parity at two batch sizes.

The truth is always the source in its own runtime (onnxruntime, torch, Keras) via
``converter.validate``, or onnxruntime directly where the ``.tflite`` file's layout
differs from the source's (``nhwc_io``).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import converter
import ir
from converter.backends import tflite
from converter.errors import InputError, UnsupportedOpsError
from converter.inputs import InputSpec

pytest.importorskip("tensorflow")
litert = pytest.importorskip("ai_edge_litert.interpreter")
ort = pytest.importorskip("onnxruntime")

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"


def _has_tf_kernel(op: str) -> bool:
    from kernels.tf import TF

    return op in TF


NEEDS_TF_LSTM = pytest.mark.skipif(not _has_tf_kernel("LSTM"), reason="no TensorFlow LSTM kernel (kernels/tf) yet")


SOURCES = [
    MODELS / "onnx" / "cnn.onnx",
    MODELS / "onnx" / "mlp.onnx",
    MODELS / "onnx" / "attention.onnx",
    MODELS / "onnx" / "control_flow.onnx",
    MODELS / "torch" / "resnet_like.pt2",
    MODELS / "torch" / "causal_lm.pt2",
    MODELS / "torch" / "cond.pt2",
    MODELS / "tf" / "cnn.keras",
    MODELS / "tf" / "multi_io.keras",
    MODELS / "tf" / "int_bool.keras",
    MODELS / "tf" / "transformer.keras",  # exact GELU (erfc form) fused into Gelu: TFLite has no builtin Erf
    pytest.param(MODELS / "tf" / "lstm_text.h5", marks=[NEEDS_TF_LSTM]),
    MODELS / "tf" / "gru_text.keras",  # Loop scan outputs collect without TensorLists (kernels/tf/accumulate.py)
]


def _ops(path: pathlib.Path) -> list[str]:
    return [op["op_name"] for op in litert.Interpreter(model_path=str(path))._get_ops_details()]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_fixture_converts_to_tflite_with_parity_at_two_batch_sizes(source, tmp_path):
    dest = tmp_path / "model.tflite"
    result = converter.convert(source, dest)
    assert result.parity is not None and result.parity.passed
    assert result.backend_info == {"quantize": "float32", "flex_ops": []}
    for batch in (1, 4):  # a symbolic batch stays resizable
        report = converter.validate(source, dest, sizes={"batch": batch})
        assert report.passed, report.summary()
        assert next(iter(report.input_shapes.values()))[0] == batch


def test_conv_chain_has_no_per_layer_transposes_and_none_with_nhwc_io(tmp_path):
    model = converter.load(MODELS / "torch" / "resnet_like.pt2")
    converter.optimize(model)
    plain, nhwc = tmp_path / "nchw.tflite", tmp_path / "nhwc.tflite"
    tflite.save(model, plain)
    info = tflite.save(model, nhwc, nhwc_io=True)
    assert info["nhwc_io"] == ["x"]
    ops = _ops(plain)
    assert ops.count("CONV_2D") >= 8 and ops.count("TRANSPOSE") <= 2  # one in (NCHW -> NHWC), at most one out
    assert _ops(nhwc).count("TRANSPOSE") == 0
    assert [v.name for v in model.graph.inputs] == ["x"] and model.graph.inputs[0].shape[1] == 3  # not modified


_CONV_MODEL = """
<ir_version: 10, opset_import: ["" : 21]>
conv (float[batch,3,8,8] x) => (float[batch,4,8,8] y, float[batch,4] pooled)
<float[4,3,3,3] w = {WEIGHTS_}, float[4] b = {BIAS_}> {
  c = Conv<pads=[1,1,1,1]>(x, w, b)
  y = Relu(c)
  g = GlobalAveragePool(y)
  pooled = Flatten(g)
}
"""


def _conv_model(tmp_path: pathlib.Path) -> pathlib.Path:
    rng = np.random.default_rng(1)
    text = _CONV_MODEL.replace("WEIGHTS_", ", ".join(f"{v:.4f}" for v in rng.standard_normal(108)))
    text = text.replace("BIAS_", ", ".join(f"{v:.4f}" for v in rng.standard_normal(4)))
    path = tmp_path / "conv.onnx"
    ir.save(ir.from_onnx_text(text), path)
    return path


def test_nhwc_io_takes_and_returns_channels_last_and_matches_onnxruntime(tmp_path):
    source = _conv_model(tmp_path)
    dest = tmp_path / "conv.tflite"
    result = converter.convert(source, dest, check=False, backend_nhwc_io=True)
    assert result.backend_info["nhwc_io"] == ["x", "y"]  # the 2-D output keeps its layout
    assert tflite.read_metadata(dest)["io_layouts"] == {"inputs": {"x": [0, 2, 3, 1]}, "outputs": {"y": [0, 2, 3, 1]}}
    assert "TRANSPOSE" not in _ops(dest)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y, pooled = ort.InferenceSession(str(source)).run(None, {"x": x})
    out = litert.Interpreter(model_path=str(dest)).get_signature_runner("serving_default")(
        x=np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(out["y"], y.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["pooled"], pooled, rtol=1e-4, atol=1e-5)


def test_specialized_dims_are_static_reported_and_keep_parity(tmp_path):
    dest = tmp_path / "attention.tflite"
    result = converter.convert(MODELS / "onnx" / "attention.onnx", dest, check=False, backend_specialize={"seq": 5})
    assert result.backend_info["specialized"] == {"seq": 5}
    (detail,) = litert.Interpreter(model_path=str(dest)).get_input_details()
    assert list(detail["shape_signature"]) == [-1, 5, 16]  # batch stays dynamic
    assert tflite.read_metadata(dest)["specialized"] == {"seq": 5}
    for batch in (1, 3):
        assert converter.validate(MODELS / "onnx" / "attention.onnx", dest, sizes={"batch": batch, "seq": 5}).passed


def test_sizes_from_input_specs_map_to_the_models_symbols():
    model = converter.load(MODELS / "torch" / "transformer.pt2")
    specs = [InputSpec.parse("x:2x8x16"), InputSpec.parse("other:3")]
    assert tflite.sizes_from_specs(model, specs) == {"batch": 2, "x_1": 8}
    with pytest.raises(InputError, match="seqq"):
        tflite.specialize_dims(model, {"seqq": 4})


def test_dims_tflite_cannot_keep_dynamic_are_named_with_the_flag_and_nothing_is_written(tmp_path):
    with pytest.raises(InputError) as info:
        converter.convert(MODELS / "torch" / "transformer.pt2", tmp_path / "t.tflite")
    assert "x_1" in info.value.message and "--input 'x:<batch>x<x_1>x16'" in info.value.hint
    assert info.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(("source", "sizes"), [
    (MODELS / "torch" / "transformer.pt2", {"x_1": 8}),  # a 5-D Squeeze: tfl.squeeze refuses dynamic dims
    pytest.param(MODELS / "tf" / "lstm_text.h5", {"tokens_1": 7}, marks=NEEDS_TF_LSTM),  # Scan: TensorList needs static shapes
], ids=["transformer.pt2", "lstm_text.h5"])
def test_models_with_dims_tflite_cannot_keep_dynamic_convert_once_sizes_are_given(source, sizes, batch, tmp_path):
    dest = tmp_path / "t.tflite"
    sizes = {"batch": batch, **sizes}
    result = converter.convert(source, dest, check=False, backend_specialize=sizes)
    assert result.backend_info["specialized"] == sizes
    # Keras records unnamed dims: parity's random inputs name them "<input>:<axis>".
    report = converter.validate(source, dest, sizes={**sizes, **{k.replace("_", ":"): v for k, v in sizes.items()}})
    assert report.passed, report.summary()


def _keras_resizing():
    import keras

    x = keras.Input((16, 16, 3), name="image")
    return keras.Model(x, keras.layers.Resizing(8, 8)(x))  # bilinear


def _keras_small_unet():
    import keras
    from keras import layers

    x = keras.Input((16, 16, 3), name="image")
    d1 = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    d2 = layers.Conv2D(8, 3, padding="same", activation="relu")(layers.MaxPool2D()(d1))
    up = layers.Concatenate()([layers.Conv2DTranspose(4, 2, strides=2)(d2), d1])
    u1 = layers.Conv2D(4, 3, padding="same")(layers.UpSampling2D(2, interpolation="bilinear")(up))
    return keras.Model(x, layers.Conv2D(2, 1)(u1))


@pytest.mark.parametrize("build", [_keras_resizing, _keras_small_unet], ids=["resizing", "unet"])
def test_keras_bilinear_resizes_convert_to_builtins_with_a_dynamic_batch(build, tmp_path):
    """A resize by constant scales [1, 1, s, s] must not resample the dynamic batch axis at run time,
    and its output must keep the static channels a following Conv2D needs; parity against Keras."""
    dest, source = tmp_path / "m.tflite", build()
    result = converter.convert(source, dest)
    assert result.parity is not None and result.parity.passed, result.parity.summary()
    assert result.backend_info == {"quantize": "float32", "flex_ops": []}
    report = converter.validate(source, dest, sizes={"batch": 3})
    assert report.passed and report.input_shapes["image"][0] == 3, report.summary()


def test_op_without_builtin_lists_every_node_by_source_name(tmp_path, capfd):
    # Sinh has no TFLite builtin (Erf had none either, but is now traced with builtins).
    model = ir.from_onnx_text("""
    <ir_version: 10, opset_import: ["" : 21]>
    g (float[batch,4] x) => (float[batch,4] y) {
      e = Sinh(x)
      y = Sinh(e)
    }""")
    for i, node in enumerate(model.graph):
        ir.set_source_name(node, f"block{i}/sinh", "onnx")
    source = tmp_path / "sinh.onnx"
    converter.save(model, source)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsupportedOpsError) as info:
        converter.convert(source, out / "t.tflite")
    assert "Sinh (as TF Sinh) x2 (block0/sinh, block1/sinh)" in info.value.message
    assert "loc(" not in capfd.readouterr().err  # the converter's MLIR diagnostics are captured
    assert "--tflite-allow-tf-ops" in info.value.hint
    assert list(out.iterdir()) == []
    assert tflite.save(converter.load(source), out / "flex.tflite", allow_tf_ops=True)["flex_ops"] == ["Sinh"]


def test_dtype_tflite_lacks_is_refused_naming_the_nodes(tmp_path):
    model = ir.from_onnx_text("""
    <ir_version: 10, opset_import: ["" : 21]>
    g (float[batch,4] x) => (float[batch,4] y) {
      d = Cast<to=11>(x)
      s = Add(d, d)
      y = Cast<to=1>(s)
    }""")
    for node in model.graph:
        ir.set_source_name(node, f"layer_{node.op_type.lower()}", "onnx")
    with pytest.raises(UnsupportedOpsError, match=r"Add on float64 x1 \(layer_add\)") as info:
        tflite.save(model, tmp_path / "d.tflite")
    assert "cast" in info.value.hint and not (tmp_path / "d.tflite").exists()


def test_fp16_weights_pass_by_cosine_and_report_it(tmp_path):
    f32, f16 = tmp_path / "cnn.tflite", tmp_path / "cnn16.tflite"
    converter.convert(MODELS / "onnx" / "cnn.onnx", f32, check=False)
    result = converter.convert(MODELS / "onnx" / "cnn.onnx", f16, backend_quantize="fp16")
    assert result.backend_info["quantize"] == "fp16"
    (out,) = result.parity.outputs
    assert out.cosine_similarity > 0.999 and out.top1_agreement == 1.0
    assert any("reduced precision" in n for n in result.parity.notes)
    assert f16.stat().st_size < f32.stat().st_size


def test_dynamic_int8_is_smaller_than_float(tmp_path):
    f32, i8 = tmp_path / "f32.tflite", tmp_path / "i8.tflite"
    converter.convert(MODELS / "onnx" / "mlp.onnx", f32, check=False)
    result = converter.convert(MODELS / "onnx" / "mlp.onnx", i8, backend_quantize="dynamic-int8")
    assert result.parity.passed
    assert i8.stat().st_size < 0.5 * f32.stat().st_size


def test_full_int8_calibrates_on_npz_and_stays_close_by_cosine(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "calib.npz"
    np.savez(data, x=rng.standard_normal((32, 3, 32, 32)).astype(np.float32))
    model = converter.load(MODELS / "onnx" / "cnn.onnx")
    dest = tmp_path / "cnn_int8.tflite"
    assert tflite.save(model, dest, quantize="int8", representative_data=data)["quantize"] == "int8"
    assert "CONV_2D" in _ops(dest)
    interpreter = litert.Interpreter(model_path=str(dest))
    assert any(np.dtype(t["dtype"]) == np.int8 for t in interpreter.get_tensor_details())
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    (expected,) = ort.InferenceSession(str(MODELS / "onnx" / "cnn.onnx")).run(None, {"x": x})
    actual = interpreter.get_signature_runner("serving_default")(x=x)["logits"]
    cosine = float(np.dot(expected.ravel(), actual.ravel()) / np.linalg.norm(expected) / np.linalg.norm(actual))
    assert cosine > 0.98, cosine
    with pytest.raises(InputError, match="calibration"):
        tflite.save(model, tmp_path / "no.tflite", quantize="int8")


def test_unknown_quantize_mode_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(InputError, match="quantize"):
        converter.convert(MODELS / "onnx" / "mlp.onnx", tmp_path / "x.tflite", backend_quantize="int3")
    assert list(tmp_path.iterdir()) == []


def test_tflite_runs_as_a_validate_source(tmp_path):
    dest = tmp_path / "mlp.tflite"
    converter.convert(MODELS / "onnx" / "mlp.onnx", dest)
    report = converter.validate(dest, MODELS / "onnx" / "mlp.onnx", batches=2)
    assert report.passed
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 32)).astype(np.float32)
    runner = litert.Interpreter(model_path=str(dest)).get_signature_runner("serving_default")
    assert runner(x=x)["probs"].shape == (3, 10)


def test_exact_gelu_decomposed_at_opset_18_converts_with_builtins_and_parity(tmp_path):
    """0.5 * x * (1 + Erf(x / sqrt 2)) as torch.onnx writes it at opset 18 (no Gelu op to fuse
    into): TFLite has no ERF builtin, so the TFLite trace computes Erf with builtins."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    consts = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("r2", np.sqrt(2.0)), ("one", 1.0), ("half", 0.5))]
    nodes = [helper.make_node("Div", ["x", "r2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["x", "p"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", f, ["batch", 64])],
                              [helper.make_tensor_value_info("y", f, ["batch", 64])], initializer=consts)
    source = tmp_path / "gelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), source)
    dest = tmp_path / "gelu.tflite"
    result = converter.convert(source, dest)
    assert result.parity is not None and result.parity.passed
    assert result.backend_info == {"quantize": "float32", "flex_ops": []}
    assert not any("ERF" in op.upper() or "FLEX" in op.upper() for op in _ops(dest))
