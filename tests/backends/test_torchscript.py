"""The TorchScript back end: generated source, scripting, and saved files that load
and run in a process without crossgraph, compared with onnxruntime."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import ir

torch = pytest.importorskip("torch")
from converter.backends import torchscript  # noqa: E402


def _init(name, shape, rng):
    return helper.make_tensor(name, TensorProto.FLOAT, shape, rng.standard_normal(shape).astype(np.float32).ravel())


def _cnn() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], strides=[2, 2], auto_pad="SAME_UPPER", name="conv2"),
        helper.make_node("BatchNormalization", ["c2", "s", "bb", "m", "v"], ["n2"], name="bn2"),
        helper.make_node("GlobalAveragePool", ["n2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
    ]
    inits = [
        _init("w1", [8, 3, 3, 3], rng), _init("b1", [8], rng), _init("w2", [16, 8, 3, 3], rng),
        _init("s", [16], rng), _init("bb", [16], rng), _init("m", [16], rng),
        helper.make_tensor("v", TensorProto.FLOAT, [16], np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5),
        _init("fw", [10, 16], rng), _init("fb", [10], rng),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Gelu", ["hb"], ["a"]),
        helper.make_node("LayerNormalization", ["a", "g", "beta"], ["n"], axis=-1),
        helper.make_node("MatMul", ["n", "w2"], ["y"]),
    ]
    inits = [_init("w1", [6, 16], rng), _init("b1", [16], rng), _init("g", [16], rng), _init("beta", [16], rng), _init("w2", [16, 4], rng)]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


_LOADER = textwrap.dedent("""
    import sys
    import numpy as np, torch
    # crossgraph may be installed in this environment: make its packages unimportable.
    for pkg in ("kernels", "converter", "ir", "onnx_ir"):
        sys.modules[pkg] = None
    m = torch.jit.load(sys.argv[1])
    feeds = np.load(sys.argv[2])
    out = {}
    for key in sorted(feeds.files):
        r = m(torch.from_numpy(feeds[key]))
        r = r if isinstance(r, tuple) else (r,)
        for name, t in zip(m.output_names, r):
            out[key + "/" + name] = t.numpy()
    np.savez(sys.argv[3], **out)
""")

CASES = {"cnn": (_cnn, [(1, 3, 16, 16), (3, 3, 20, 12)]), "mlp": (_mlp, [(1, 5, 6), (4, 9, 6)])}


@pytest.mark.parametrize("name", sorted(CASES))
def test_saved_module_runs_without_crossgraph_at_two_sizes(name, tmp_path):
    build, shapes = CASES[name]
    proto = build()
    path, source = tmp_path / "model.pt", tmp_path / "model_gen.py"
    torchscript.save(ir.from_proto(proto), path, emit_source=source)
    assert "def forward(self, x: Tensor)" in source.read_text()
    rng = np.random.default_rng(2)
    feeds = {f"f{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    np.savez(tmp_path / "in.npz", **feeds)
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-I", "-c", _LOADER, str(path), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        cwd=tmp_path, env=clean, check=True, timeout=300,
    )
    got = np.load(tmp_path / "out.npz")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for key, x in feeds.items():
        for out_name, want in zip(names, sess.run(None, {"x": x}), strict=True):
            np.testing.assert_allclose(got[f"{key}/{out_name}"], want, rtol=1e-4, atol=1e-5)


def test_generated_source_has_one_commented_line_per_node():
    model = ir.from_proto(_cnn())
    ir.set_source_name(next(iter(model.graph)), "features.0", "torch")
    src = torchscript.generate_source(model)
    assert "# Conv conv1  (source: features.0)" in src
    # Static attributes become the torch call itself; SAME_UPPER padding stays with the kernel.
    assert "c1 = k_conv2d(x, self.w_w1, self.w_b1, [1, 1], [1, 1], [1, 1], 1)" in src
    assert src.count("k_conv(") == 1 and "p1 = torch.max_pool2d(r1, [2, 2], [2, 2], [0, 0], [1, 1], False)" in src
    assert "Inputs: x" in src and "Outputs: logits, probs" in src


def test_if_and_loop_are_scripted_not_traced(tmp_path):
    text = """
        <ir_version: 10, opset_import: ["" : 21]>
        ctrl (float[N] x, bool c, int64 k) => (float[N] y, float[N] z) {
            y = If(c) <
                then_branch = g1 () => (float[N] t) { t = Add(x, x) },
                else_branch = g2 () => (float[N] e) { e = Neg(x) }
            >
            acc0 = Sub(x, x)
            z = Loop(k, c, acc0) <
                body = b (int64 i, bool cin, float[N] acc) => (bool cout, float[N] next) {
                    cout = Identity(cin)
                    next = Add(acc, x)
                }
            >
        }
    """
    torchscript.save(ir.from_onnx_text(text), tmp_path / "ctrl.pt")
    m = torch.jit.load(str(tmp_path / "ctrl.pt"))
    x = torch.tensor([1.0, -2.0])
    y, z = m(x, torch.tensor(True), torch.tensor(3))
    assert torch.equal(y, 2 * x) and torch.equal(z, 3 * x)
    y, z = m(torch.tensor([5.0]), torch.tensor(False), torch.tensor(3))
    assert torch.equal(y, torch.tensor([-5.0])) and torch.equal(z, torch.tensor([0.0]))


def test_unknown_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="torchscript"):
        torchscript.save(ir.from_proto(_mlp()), tmp_path / "m.pt", format="onnx")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_module_moves_to_cuda(tmp_path):
    proto = _cnn()
    torchscript.save(ir.from_proto(proto), tmp_path / "m.pt")
    m = torch.jit.load(str(tmp_path / "m.pt")).to("cuda")
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
    logits, _ = m(torch.from_numpy(x).cuda())
    want = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(logits.cpu().numpy(), want, rtol=1e-3, atol=1e-4)


# ---- generated code: folding, direct torch calls, freezing ---------------------------------


def _conv_bn(rank: int, attrs: dict, bn: bool) -> onnx.ModelProto:
    """Conv (weight from ConstantOfShape plus noise, as in the onnx light models) [+ BatchNorm] + Relu."""
    rng = np.random.default_rng(4)
    group = attrs.get("group", 1)
    w_shape = [6, 4 // group] + [3] * (rank - 2)
    nodes = [
        helper.make_node("ConstantOfShape", ["w_shape"], ["w_fill"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.02])),
        helper.make_node("Add", ["w_fill", "w_noise"], ["w"]),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs),
    ]
    inits = [
        helper.make_tensor("w_shape", TensorProto.INT64, [len(w_shape)], w_shape),
        _init("w_noise", w_shape, rng), _init("b", [6], rng),
    ]
    if bn:
        nodes.append(helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], epsilon=1e-3))
        inits += [_init("s", [6], rng), _init("bb", [6], rng), _init("m", [6], rng),
                  helper.make_tensor("v", TensorProto.FLOAT, [6], np.abs(rng.standard_normal(6)) + 0.5)]
    nodes.append(helper.make_node("Relu", ["n" if bn else "c"], ["y"]))
    spatial = ["h", "w", "d"][: rank - 2]
    graph = helper.make_graph(
        nodes, "conv_bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, *spatial])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)


CONVS = {
    "2d": (4, {"pads": [1, 1, 1, 1]}, True),
    "2d-strided-dilated": (4, {"strides": [2, 1], "dilations": [1, 2], "pads": [2, 1, 2, 1]}, True),
    "2d-grouped-valid": (4, {"group": 2, "auto_pad": "VALID"}, True),
    "2d-asymmetric-pads": (4, {"pads": [0, 1, 1, 0]}, True),  # the kernel's explicit padding
    "1d": (3, {"pads": [1, 1]}, False),
    "3d": (5, {"strides": [1, 2, 1]}, True),
}


@pytest.mark.parametrize("name", sorted(CONVS))
def test_folded_constants_and_conv_batchnorm_match_onnxruntime(name):
    proto = _conv_bn(*CONVS[name])
    model = ir.from_proto(proto)
    src = torchscript.generate_source(model)
    assert "constant_of_shape" not in src and "k_add" not in src  # the weight is computed once, here
    rank, attrs, bn = CONVS[name]
    direct = "pads" not in attrs or attrs["pads"][: rank - 2] == attrs["pads"][rank - 2 :]
    assert ("with BatchNormalization" in src) == (bn and direct), src
    module = torchscript.script(model)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    for batch, size in ((1, 9), (3, 12)):  # symbolic dims stay dynamic
        x = rng.standard_normal((batch, 4, *[size] * (rank - 2))).astype(np.float32)
        with torch.inference_mode():
            got = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, sess.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("how", ["script-freeze", "freeze-after-load"])
def test_frozen_module_keeps_dynamic_dims_names_and_results(how, tmp_path):
    proto = _cnn()
    if how == "script-freeze":
        m = torchscript.script(ir.from_proto(proto), freeze=True)
        assert m.input_names == ["x"] and m.output_names == ["logits", "probs"]
    else:  # what a user of the saved file can do where it runs
        torchscript.save(ir.from_proto(proto), tmp_path / "m.pt")
        m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(str(tmp_path / "m.pt")).eval()))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(6)
    for shape in ((1, 3, 16, 16), (3, 3, 20, 12)):
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.inference_mode():
            got = m(torch.from_numpy(x))
        for g, want in zip(got, sess.run(None, {"x": x}), strict=True):
            np.testing.assert_allclose(g.numpy(), want, rtol=1e-4, atol=1e-5)


def test_conv_weights_are_saved_channels_last(tmp_path):
    """oneDNN reads channels-last weights without a per-call copy; the layout must survive the file."""
    torchscript.save(ir.from_proto(_cnn()), tmp_path / "m.pt")
    m = torch.jit.load(str(tmp_path / "m.pt"))
    weights = dict(m.named_buffers())
    assert weights["w_w1"].is_contiguous(memory_format=torch.channels_last)  # conv1: a direct call
    assert weights["w_w2"].is_contiguous()  # conv2 (SAME_UPPER) calls the kernel, which takes any layout


def test_light_squeezenet_on_channels_last_convolutions_matches_onnxruntime():
    """2-D convolutions run channels-last, and that layout must not break a tie.

    light_squeezenet's weights are constants, so its 1000 logits are equal and about
    1e10 in magnitude; onnxruntime's Softmax gives exactly 1/1000 each. Averaging
    channels-last activations summed channels in different orders (one ulp apart),
    which Softmax turned into a one-hot result on signed inputs.
    """
    path = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_squeezenet.onnx"
    model = ir.load(path)
    assert "torch.mean(r64.contiguous()" in torchscript.generate_source(model)
    module = torchscript.script(model)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.inference_mode():
        got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, sess.run(None, {"data_0": x})[0], rtol=1e-4, atol=1e-6)


def test_global_average_pool_kernel_keeps_equal_channels_equal_in_any_layout():
    """onnxruntime averages every channel alike: equal channels give bit-equal means (ties stay ties)."""
    from kernels.torch.nn import global_average_pool

    x = np.repeat(np.random.default_rng(8).standard_normal((1, 1, 13, 13)).astype(np.float32) * 1e9, 1000, axis=1)
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    graph = helper.make_graph([node], "gap", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    want = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.unique(want).size == 1
    for layout in (torch.contiguous_format, torch.channels_last):
        got = global_average_pool(torch.from_numpy(x).contiguous(memory_format=layout)).numpy()
        assert np.unique(got).size == 1, layout
        np.testing.assert_allclose(got, want, rtol=1e-6)
