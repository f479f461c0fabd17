"""Parity: metrics against numpy truth, per-dtype tolerances, inputs, devices."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import converter
from converter import parity
from converter.errors import InputError


def _perturbed(src, dst, name: str, delta: float) -> None:
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.name == name:
            arr = onnx.numpy_helper.to_array(init).copy()
            arr.flat[0] += delta
            init.CopyFrom(onnx.numpy_helper.from_array(arr, name))
    onnx.save(model, dst)


def test_identical_models_pass_with_zero_error(onnx_fixtures):
    report = converter.validate(onnx_fixtures / "cnn.onnx", onnx_fixtures / "cnn.onnx", batches=2)
    assert report.passed
    (out,) = report.outputs
    assert out.max_abs_error == 0.0 and out.mismatch_fraction == 0.0
    assert out.cosine_similarity == pytest.approx(1.0)
    assert out.top1_agreement == 1.0 and out.top5_agreement == 1.0
    assert report.input_shapes == {"x": [2, 3, 32, 32]}


def test_real_error_fails_and_metrics_match_numpy(tmp_path, onnx_fixtures):
    other = tmp_path / "other.onnx"
    _perturbed(onnx_fixtures / "cnn.onnx", other, "fc.bias", 0.5)  # logit 0 shifted by 0.5
    report = converter.validate(onnx_fixtures / "cnn.onnx", other)
    (out,) = report.outputs
    assert not report.passed
    assert out.max_abs_error == pytest.approx(0.5, rel=1e-5)
    assert out.mismatch_fraction == pytest.approx(1 / 10)  # one of ten logits per row
    assert 0.0 < out.cosine_similarity < 1.0


def test_tolerance_overrides_apply(tmp_path, onnx_fixtures):
    other = tmp_path / "other.onnx"
    _perturbed(onnx_fixtures / "cnn.onnx", other, "fc.bias", 1e-3)
    assert not converter.validate(onnx_fixtures / "cnn.onnx", other).passed
    assert converter.validate(onnx_fixtures / "cnn.onnx", other, atol=1e-2).passed


def test_integer_outputs_must_match_exactly(tmp_path):
    def model(offset: int, path):
        graph = helper.make_graph(
            [helper.make_node("Add", ["x", "c"], ["y"])], "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.INT64, ["batch", 3])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, ["batch", 3])],
            [onnx.numpy_helper.from_array(np.array([0, 0, offset], np.int64), "c")],
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        m.ir_version = 10
        onnx.save(m, path)

    model(0, tmp_path / "a.onnx")
    model(1, tmp_path / "b.onnx")
    report = converter.validate(tmp_path / "a.onnx", tmp_path / "b.onnx", int_range=(0, 100))
    (out,) = report.outputs
    assert out.rtol == 0.0 and out.atol == 0.0
    assert not report.passed and out.mismatch_fraction == pytest.approx(1 / 3)


def test_user_inputs_from_npz(tmp_path, onnx_fixtures):
    data = tmp_path / "inputs.npz"
    x = np.random.default_rng(5).standard_normal((5, 32)).astype(np.float32)
    np.savez(data, x=x)
    report = converter.validate(onnx_fixtures / "mlp.onnx", onnx_fixtures / "mlp.onnx", inputs=data)
    assert report.passed and report.input_shapes == {"x": [5, 32]}


def test_symbol_sizes_are_chosen(onnx_fixtures):
    report = parity.validate(onnx_fixtures / "attention.onnx", onnx_fixtures / "attention.onnx", sizes={"seq": 7})
    assert report.input_shapes == {"x": [2, 7, 16]}


def test_make_inputs_binds_one_size_per_symbol():
    feeds = parity.make_inputs([("a", ["batch", "seq"], "float32"), ("b", ["batch", 4], "int64"), ("m", ["batch"], "bool")],
                               sizes={"seq": 5}, int_range=(3, 4))
    assert feeds["a"].shape == (2, 5) and feeds["b"].shape == (2, 4) and feeds["m"].dtype == bool
    assert (feeds["b"] == 3).all()


def test_report_is_json_serializable(onnx_fixtures):
    import json

    report = converter.validate(onnx_fixtures / "mlp.onnx", onnx_fixtures / "mlp.onnx")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is True and data["outputs"][0]["name"] == "probs"


def test_cuda_without_a_gpu_fails_clearly(onnx_fixtures):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match="no CUDA device"):
        converter.validate(onnx_fixtures / "mlp.onnx", onnx_fixtures / "mlp.onnx", device="cuda")


def test_localization_names_the_first_divergent_node(monkeypatch, tmp_path, onnx_fixtures):
    from converter.localize import localize
    from kernels import executor

    model = converter.load(onnx_fixtures / "attention.onnx")
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    assert localize(model, {"x": x}).first is None

    original = executor.Executor._call_kernel

    def broken_softmax(self, node, args):
        out = original(self, node, args)
        return [o * 1.01 for o in out] if node.op_type == "Softmax" else out

    monkeypatch.setattr(executor.Executor, "_call_kernel", broken_softmax)
    result = localize(model, {"x": x}, repro_dir=tmp_path)
    assert result.first.source_name == "attn/softmax" and result.first.op == "Softmax"
    assert result.worst is not None
    repro = onnx.load(result.repro)
    assert [n.op_type for n in repro.graph.node] == ["Softmax"]
    assert (tmp_path / "repro_attn_softmax_inputs.npz").exists()


def test_graphdef_and_savedmodel_sources_run_natively(tmp_path):
    pytest.importorskip("tensorflow")
    from conftest import FIXTURES

    for name in ("frozen_cnn.pb", "control_flow_savedmodel"):
        src = FIXTURES / "models" / "tf" / name
        result = converter.convert(src, tmp_path / f"{name}.onnx")
        assert result.parity is not None and result.parity.passed, name
        report = converter.validate(src, tmp_path / f"{name}.onnx", batches=2)
        assert report.passed and report.batches == 2


def test_random_sizes_fall_inside_the_models_ranges(tmp_path):
    """A program exported for seq in 40..48 takes the long branch; checking it at the default
    size 3 would compare it with the short branch of the eager module and fail."""
    torch = pytest.importorskip("torch")

    class Head(torch.nn.Module):
        def forward(self, x):
            return x[:, :10] * 2 if x.shape[1] > 10 else x

    result = converter.convert(Head(), tmp_path / "head.onnx", inputs=["x:batch x seq=40..48"], check=True)
    assert result.parity.passed
    assert result.parity.input_shapes["x"][1] == 40
    assert parity.sizes_within_ranges(None, {"batch": 5}) == {"batch": 5}


def test_a_module_taking_a_dict_and_keywords_is_called_as_it_was_exported(tmp_path):
    """The source side rebuilds the structure of the example inputs (a dict argument and a
    keyword argument) from the flat feeds, and leaves the module in the mode it was in."""
    torch = pytest.importorskip("torch")

    class Structured(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 3)
            self.drop = torch.nn.Dropout(0.0)

        def forward(self, batch: dict, *, scale: torch.Tensor) -> dict:
            h = self.drop(self.proj(batch["a"] - batch["b"])) * scale
            return {"h": h, "total": h.sum(-1)}

    module = Structured().train()
    examples = {"batch": {"a": torch.randn(2, 4), "b": torch.randn(2, 4)}, "scale": torch.rand(2, 1)}
    result = converter.convert(module, tmp_path / "s.onnx", inputs=examples, check=True)
    assert result.parity is not None and result.parity.passed
    assert module.training
    report = parity.validate(module, tmp_path / "s.onnx", spec_inputs=examples)
    assert report.passed and {o.name for o in report.outputs} == {"h", "total"}


def test_bfloat16_inputs_are_reported_as_unchecked_not_as_a_crash(tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).to(torch.bfloat16)
    result = converter.convert(module, tmp_path / "bf16.onnx", inputs=["x:batch x 4:bfloat16"], check=True)
    assert result.parity is None and "bfloat16" in result.parity_note
    assert (tmp_path / "bf16.onnx").exists()


def test_half_precision_models_are_judged_at_half_precision_tolerance():
    """A model computing in float16 with float32 outputs (keep_io_types) is off by float16
    rounding steps; its float outputs get float16's tolerance, integer outputs stay exact."""
    import ir
    from converter.parity_metrics import compare_output

    text = """
        <ir_version: 10, opset_import: ["" : 21]>
        g (float[N, 4] x) => (float[N, 4] y) {
            h = Cast <to = 10> (x)
            k = Relu (h)
            y = Cast <to = 1> (k)
        }
    """
    assert parity.lowest_float_precision(ir.from_onnx_text(text)) == "float16"
    expected = np.array([[0.2734, 1.5]], np.float32)
    off = expected * (1 + 8e-4)  # about one float16 step: outside float32's rtol 1e-4
    assert not compare_output("y", [(expected, off)], None, None).passed
    assert compare_output("y", [(expected, off)], None, None, computed_in="float16").passed
    labels = np.array([3, 7])
    assert not compare_output("label", [(labels, labels + 1)], None, None, computed_in="float16").passed


def test_open_dims_of_the_sources_signature_come_from_the_input_specs():
    known = [("x", ["batch", 6], "float32")]
    assert parity._refined([("x", [None, None], "float32")], known) == [("x", ["batch", 6], "float32")]
    assert parity._refined([("x", [None, 5], "float32")], known) == [("x", ["batch", 5], "float32")]
    assert parity._refined([("z", [None], "float32")], known) == [("z", [None], "float32")]


def test_savedmodel_with_sanitized_names_is_fed_by_the_models_names(tmp_path):
    """Names TensorFlow rejects ('class', 'input.1', 'out:0') are sanitized in the signature; parity
    feeds and reads them through the names the back end records, whatever their sorted order."""
    pytest.importorskip("tensorflow")
    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("Sub", ["class", "input.1"], ["out:0"]), helper.make_node("Mul", ["class", "def"], ["1x"])],
        "g",
        [helper.make_tensor_value_info(n, f, ["batch", 3]) for n in ("input.1", "class", "def")],
        [helper.make_tensor_value_info(n, f, ["batch", 3]) for n in ("out:0", "1x")],
    )
    path = tmp_path / "names.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), path)
    result = converter.convert(path, tmp_path / "sm", target_format="savedmodel", check=True)
    assert result.parity is not None and result.parity.passed
    assert {o.name for o in result.parity.outputs} == {"out:0", "1x"}
