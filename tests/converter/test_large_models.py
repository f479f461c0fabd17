"""The large-model code paths on small models: external data, memory-mapped and shared weights.

The 2 GB switch to external data is monkeypatched down to a few hundred bytes,
so the paths that ``bench/large.py`` measures on a real >2 GB model run here in
seconds: ONNX -> ONNX writes external data and the weights come back identical;
ONNX -> TorchScript wraps the memory-mapped weights without copying them;
PyTorch -> ONNX keeps the module's own tensors (same memory) until they are
streamed to the external data file. Outputs are checked against onnxruntime and
torch, and weights against the source's bytes.
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import converter
import ir
from converter.backends import onnx as onnx_backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
MLP = ROOT / "fixtures" / "models" / "onnx" / "mlp.onnx"


@pytest.fixture
def small_threshold(monkeypatch):
    """Every model counts as "above 2 GB"."""
    monkeypatch.setattr(onnx_backend, "EXTERNAL_DATA_THRESHOLD", 256)


def _weights(path: pathlib.Path) -> dict[str, np.ndarray]:
    proto = onnx.load(str(path))  # resolves external data from the model's folder
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def _external_names(path: pathlib.Path) -> set[str]:
    proto = onnx.load(str(path), load_external_data=False)
    return {t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}


def _ort(path: pathlib.Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _mlp_feeds() -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(MLP), providers=["CPUExecutionProvider"])
    (x,) = session.get_inputs()
    shape = [d if isinstance(d, int) else 2 for d in x.shape]
    return {x.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}


def test_onnx_to_onnx_writes_external_data_above_the_threshold(small_threshold, tmp_path):
    out = tmp_path / "out.onnx"
    result = converter.convert(MLP, out, optimize=0)
    assert result.parity.passed
    assert (tmp_path / "out.onnx.data").is_file()
    source = _weights(MLP)
    assert _external_names(out) == {name for name, w in source.items() if w.nbytes > 1024}
    written = _weights(out)
    assert written.keys() == source.keys()
    for name, w in source.items():
        np.testing.assert_array_equal(written[name], w)


def test_below_the_threshold_weights_stay_inline(tmp_path):
    out = tmp_path / "out.onnx"
    converter.convert(MLP, out, optimize=0, check=False)
    assert not (tmp_path / "out.onnx.data").exists()
    assert _external_names(out) == set()


@pytest.fixture
def external_mlp(small_threshold, tmp_path) -> pathlib.Path:
    path = tmp_path / "src" / "mlp.onnx"
    path.parent.mkdir()
    converter.convert(MLP, path, optimize=0, check=False)
    assert _external_names(path)
    return path


def test_external_weights_load_memory_mapped_and_convert_again(external_mlp, tmp_path):
    model = converter.load(external_mlp)
    external = [v.const_value for v in model.graph.initializers.values() if isinstance(v.const_value, ir.ExternalTensor)]
    assert external, "external data was read into memory instead of mapped"
    out = tmp_path / "again.onnx"
    converter.convert(external_mlp, out, optimize=0, check=False)
    assert (tmp_path / "again.onnx.data").is_file()
    for name, w in _weights(external_mlp).items():
        np.testing.assert_array_equal(_weights(out)[name], w)
    feeds = _mlp_feeds()
    np.testing.assert_allclose(_ort(out, feeds)[0], _ort(MLP, feeds)[0], rtol=1e-6, atol=1e-6)


def test_torchscript_back_end_wraps_mapped_weights_without_copying(external_mlp, tmp_path):
    torch = pytest.importorskip("torch")
    from converter.backends.torchscript import weight_tensor

    model = converter.load(external_mlp)
    mapped = [v.const_value for v in model.graph.initializers.values() if isinstance(v.const_value, ir.ExternalTensor)]
    assert mapped
    for tensor in mapped:
        assert weight_tensor(tensor).data_ptr() == tensor.numpy().ctypes.data  # the memory map itself, not a copy
    out = tmp_path / "mlp.pt"
    converter.convert(external_mlp, out, optimize=0, check=False)
    module = torch.jit.load(str(out))
    saved = [b.numpy() for b in module.buffers()]
    for name, w in _weights(external_mlp).items():
        assert any(s.shape == w.shape and np.array_equal(s, w) for s in saved), name
    feeds = _mlp_feeds()
    got = module(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    np.testing.assert_allclose(got, _ort(MLP, feeds)[0], rtol=1e-5, atol=1e-5)


def _torch_mlp():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8),
    ).eval()


def test_torch_front_end_keeps_the_modules_tensors(small_threshold, tmp_path):
    torch = pytest.importorskip("torch")
    module = _torch_mlp()
    spec = [converter.InputSpec("x", ("batch", 16), "float32")]
    model = converter.load(module, inputs=spec)
    initializer_ptrs = {
        v.const_value.raw.data_ptr() for v in model.graph.initializers.values() if isinstance(v.const_value.raw, torch.Tensor)
    }
    params = dict(module.named_parameters())
    assert {p.data_ptr() for p in params.values()} <= initializer_ptrs  # shared, not copied

    out = tmp_path / "mlp.onnx"
    converter.save(model, out)
    assert (tmp_path / "mlp.onnx.data").is_file()
    written = list(_weights(out).values())
    for name, p in params.items():
        expected = p.detach().numpy()
        assert any(w.shape == expected.shape and np.array_equal(w, expected) for w in written) or any(
            w.shape == expected.T.shape and np.array_equal(w, expected.T) for w in written
        ), name
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_ort(out, {"x": x})[0], expected, rtol=1e-5, atol=1e-5)


def test_torch_to_onnx_convert_with_external_data_passes_parity(small_threshold, tmp_path):
    module = _torch_mlp()
    out = tmp_path / "mlp.onnx"
    result = converter.convert(module, out, inputs=[converter.InputSpec("x", ("batch", 16), "float32")])
    assert result.parity.passed
    assert _external_names(out) and (tmp_path / "mlp.onnx.data").is_file()


# ---- single-file ONNX written by streaming ---------------------------------------


@pytest.fixture
def stream_everything(monkeypatch):
    """Every inline model is written by the streaming serializer."""
    monkeypatch.setattr(onnx_backend, "STREAM_THRESHOLD", 0)


@pytest.mark.parametrize("fixture", ["mlp", "cnn", "control_flow"])
def test_streamed_single_file_parses_as_the_same_model_protobuf_writes(stream_everything, tmp_path, fixture):
    model = ir.load(ROOT / "fixtures" / "models" / "onnx" / f"{fixture}.onnx")
    streamed, reference = tmp_path / "streamed.onnx", tmp_path / "reference.onnx"
    onnx_backend.save(model, streamed)
    ir.save(model, reference)  # protobuf's own serializer, the whole message in memory
    assert onnx.load(str(streamed)) == onnx.load(str(reference))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference.onnx", "streamed.onnx"]  # no scratch left
    onnx.checker.check_model(str(streamed))


def test_forcing_a_single_file_inlines_memory_mapped_weights(stream_everything, external_mlp, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_backend, "EXTERNAL_DATA_THRESHOLD", 1_800_000_000)  # a small model again
    out = tmp_path / "single.onnx"
    converter.convert(external_mlp, out, optimize=0, check=False, backend_external_data=False)
    assert _external_names(out) == set() and not (tmp_path / "single.onnx.data").exists()
    for name, w in _weights(external_mlp).items():
        np.testing.assert_array_equal(_weights(out)[name], w)
    feeds = _mlp_feeds()
    np.testing.assert_allclose(_ort(out, feeds)[0], _ort(MLP, feeds)[0], rtol=1e-6, atol=1e-6)


# ---- peak memory, measured by the kernel in a fresh process ------------------------

_PEAK = """
import pathlib, sys
sys.path.insert(0, {root!r})
import numpy as np
import ir
{imports}

def mib(field):
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

# x -> MatMul(w0) -> ... -> MatMul(w15): 256 MiB of float32 weights
rng = np.random.default_rng(0)
x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape(["batch", 2048]))
weights = [ir.Value(name=f"w{{i}}", const_value=ir.Tensor(rng.standard_normal((2048, 2048), np.float32) / 45, name=f"w{{i}}"))
           for i in range(16)]
nodes, h = [], x
for w in weights:
    nodes.append(ir.node("MatMul", [h, w]))
    h = nodes[-1].outputs[0]
h.name, h.dtype, h.shape = "y", ir.DataType.FLOAT, ir.Shape(["batch", 2048])
graph = ir.Graph([x], [h], nodes=nodes, initializers=weights, opset_imports={{"": 21}}, name="chain")
model = ir.Model(graph, ir_version=10)
nbytes = 16 * 2048 * 2048 * 4
{setup}
pathlib.Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from the current size
base = mib("VmRSS")
{step}
print((mib("VmHWM") - base) * 2**20 / nbytes)
"""


def _peak_over_weights(tmp_path: pathlib.Path, step: str, *, imports: str = "", setup: str = "") -> float:
    """(peak RSS during ``step`` - RSS before it) / weight bytes, for 256 MiB of weights in ``model``."""
    import subprocess
    import sys

    code = _PEAK.format(root=str(ROOT), imports=imports, setup=setup, step=step)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.strip().splitlines()[-1])


def test_single_file_save_adds_no_copy_of_in_memory_weights(tmp_path):
    """protobuf's serializer holds the ModelProto and its bytes: about 3x the weights on top of them."""
    step = "onnx_backend.save(model, pathlib.Path('single.onnx'))"
    ratio = _peak_over_weights(tmp_path, step, imports="from converter.backends import onnx as onnx_backend")
    assert ratio < 0.3, f"saving a single file took {ratio:.2f}x the weights on top of the model"
    assert _external_names(tmp_path / "single.onnx") == set()


def test_savedmodel_export_of_mapped_weights_holds_them_once(tmp_path):
    """The variables own one copy; the memory-mapped pages they were copied from are released."""
    pytest.importorskip("tensorflow")
    setup = ("ir.save(model, 'src.onnx', external_data='src.onnx.data')\n"
             "del weights, nodes, h, x\n"
             "model = ir.load('src.onnx')\n"
             "import tensorflow as tf\n"
             "from converter.backends import savedmodel\n"
             "tf.constant(1.0) + 1")  # TensorFlow's runtime starts before the baseline
    ratio = _peak_over_weights(tmp_path, "savedmodel.save(model, pathlib.Path('out'))", setup=setup)
    assert ratio < 1.4, f"the SavedModel export took {ratio:.2f}x the weights"
    assert (tmp_path / "out" / "saved_model.pb").is_file()


def test_validate_releases_the_source_before_loading_the_converted_model(monkeypatch, tmp_path):
    import weakref

    from converter import parity

    out = tmp_path / "mlp.pt"
    converter.convert(MLP, out, optimize=0, check=False)
    opened: list[tuple[str, list[bool]]] = []
    runners: list[weakref.ref] = []
    real_open = parity.open_runner

    def recording_open(obj, fmt, **kwargs):
        opened.append((pathlib.Path(obj).name, [r() is not None for r in runners]))
        runner = real_open(obj, fmt, **kwargs)
        runners.append(weakref.ref(runner))
        return runner

    monkeypatch.setattr(parity, "open_runner", recording_open)
    monkeypatch.setattr(parity, "_RELEASE_ABOVE", 0)  # collect for any size (the default: above 256 MiB)
    report = converter.validate(MLP, out, batches=2)
    assert report.passed and report.batches == 2
    assert opened == [("mlp.onnx", []), ("mlp.pt", [False])]  # the source's runtime was gone by then
    assert all(r() is None for r in runners)
