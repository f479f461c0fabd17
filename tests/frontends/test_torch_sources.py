"""The PyTorch front end's sources, errors and bookkeeping.

Sources: live module, ExportedProgram, ScriptModule (scripted and traced),
``.pt2`` and TorchScript files, ``package.module:function`` factories, dict
inputs. Errors: every unsupported op listed at once; missing, corrupt and
signature-less sources refused with ``InputError``. Bookkeeping: shared
symbols, provenance, weights wrapped without copies.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

import ir  # noqa: E402
from converter.errors import InputError, UnsupportedOpsError  # noqa: E402
from converter.frontends.torch import load  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402

MODELS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models" / "torch"


def ort_run(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.lgamma(self.inner(x)) + torch.digamma(x) + torch.lgamma(x)


def _check_at_two_batches(model: ir.Model, reference: object, shape: tuple[int, ...], axis: int = 0) -> None:
    for batch in (2, 6):
        dims = list(shape)
        dims[axis] = batch
        x = torch.randn(dims)
        with torch.no_grad():
            want = reference(x)
        got = ort_run(model, {model.graph.inputs[0].name: x.numpy()})[0]
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


# ---- sources ----------------------------------------------------------------------


def test_torchscript_file_with_dynamic_batch() -> None:
    model = load(MODELS / "resnet_like.ts.pt", format="torchscript", inputs=[InputSpec("x", ("batch", 3, 32, 32))])
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert model.graph.inputs[0].shape[0] == ir.SymbolicDim("batch")
    _check_at_two_batches(model, torch.jit.load(str(MODELS / "resnet_like.ts.pt")), (0, 3, 32, 32))


def test_torchscript_gru_static_and_a_clear_error_when_a_dim_specializes() -> None:
    path = MODELS / "gru.ts.pt"
    model = load(path, format="torchscript", inputs=[InputSpec("x", (5, 3, 8))])
    assert "GRU" in {n.op_type for n in model.graph}
    x = torch.randn(5, 3, 8)
    np.testing.assert_allclose(ort_run(model, {"x": x.numpy()})[0], torch.jit.load(str(path))(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    # TS2EPConverter bakes the initial hidden state's batch size in: torch.export refuses the symbol.
    with pytest.raises(InputError, match="Constraints violated"):
        load(path, format="torchscript", inputs=[InputSpec("x", (5, "batch", 8))])


def test_traced_torchscript_file_static_inputs(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    module = TwoLayer().eval()
    path = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(module, torch.randn(2, 4)), str(path))
    x = torch.randn(2, 4)
    model = load(path, format="torchscript", inputs=(x,))
    np.testing.assert_allclose(ort_run(model, {"x": x.numpy()})[0], module(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_live_scriptmodule_and_exported_program_objects() -> None:
    torch.manual_seed(0)
    module = TwoLayer().eval()
    spec = [InputSpec("x", ("batch", 4))]
    for source in (torch.jit.script(module), torch.export.export(module, (torch.randn(3, 4),), dynamic_shapes=({0: torch.export.Dim("b")},))):
        model = load(source, format="torch", inputs=spec)
        _check_at_two_batches(model, module, (0, 4))


def test_program_already_decomposed_by_the_user() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Hardswish(), nn.Linear(6, 2)).eval()
    x = torch.randn(3, 4)
    ep = torch.export.export(module, (x,)).run_decompositions()  # the full default table
    model = load(ep, format="torch")
    assert {"LayerNormalization", "Gemm"} <= {n.op_type for n in model.graph}
    np.testing.assert_allclose(ort_run(model, {"input": x.numpy()})[0], module(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_factory_route_module_colon_function() -> None:
    model = load("fixtures.build_torch_fixtures:resnet_like", format="torch", inputs=[InputSpec("x", ("batch", 3, 32, 32))])
    from fixtures.build_torch_fixtures import resnet_like

    _check_at_two_batches(model, resnet_like(), (0, 3, 32, 32))


def test_dict_inputs_name_the_graph_inputs() -> None:
    class Pair(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a * 2 - b

    a, b = torch.randn(2, 3), torch.randn(2, 3)
    model = load(Pair(), format="torch", inputs={"a": a, "b": b})
    assert [v.name for v in model.graph.inputs] == ["a", "b"]
    np.testing.assert_allclose(ort_run(model, {"a": a.numpy(), "b": b.numpy()})[0], (a * 2 - b).numpy(), rtol=1e-6)


def test_shared_symbol_is_one_dim() -> None:
    class Add(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    model = load(Add(), format="torch", inputs=[InputSpec("x", ("batch", 3)), InputSpec("y", ("batch", 3))])
    dims = [v.shape[0] for v in [*model.graph.inputs, *model.graph.outputs]]
    assert dims == [ir.SymbolicDim("batch")] * 3
    got = ort_run(model, {"x": np.ones((7, 3), np.float32), "y": np.ones((7, 3), np.float32)})[0]
    assert got.shape == (7, 3)


# ---- bookkeeping ------------------------------------------------------------------


def test_weights_wrap_the_torch_tensors_without_copy() -> None:
    module = TwoLayer().eval()
    model = load(module, format="torch", inputs=(torch.randn(2, 4),))
    tensor = model.graph.initializers["fc1.weight"].const_value
    assert tensor.raw.data_ptr() == module.fc1.weight.data_ptr()
    np.testing.assert_array_equal(tensor.numpy(), module.fc1.weight.detach().numpy())


def test_every_node_records_its_module_and_framework() -> None:
    model = load(TwoLayer(), format="torch", inputs=(torch.randn(2, 4),))
    names = {ir.source_name(n) for n in model.graph}
    assert {"fc1", "fc2"} <= names
    assert all(n.metadata_props.get("crossgraph.source_framework") == "torch" for n in model.graph)


# ---- errors -------------------------------------------------------------------------


def test_unsupported_ops_are_all_listed_at_once() -> None:
    with pytest.raises(UnsupportedOpsError) as info:
        load(Unsupported(), format="torch", inputs=(torch.randn(2, 3),))
    ops = {op for op, _ in info.value.ops}
    assert ops == {"aten::lgamma", "aten::digamma"}
    assert len(info.value.ops) == 3
    assert "aten::lgamma x2" in str(info.value) and "aten::digamma x1" in str(info.value)


def test_missing_and_corrupt_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        load(tmp_path / "nope.pt2", format="exported_program")
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip archive at all")
    with pytest.raises(InputError, match="not a readable ExportedProgram"):
        load(bad, format="exported_program")
    bad_ts = tmp_path / "bad.pt"
    bad_ts.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="not a readable TorchScript"):
        load(bad_ts, format="torchscript", inputs=(torch.randn(1),))


def test_sources_without_example_inputs_are_refused() -> None:
    with pytest.raises(InputError, match="example inputs"):
        load(TwoLayer(), format="torch")
    with pytest.raises(InputError, match="example inputs"):
        load(MODELS / "gru.ts.pt", format="torchscript")


def test_bad_factory_string() -> None:
    with pytest.raises(InputError, match="cannot import"):
        load("no_such_package.models:make", format="torch", inputs=(torch.randn(1),))
    with pytest.raises(InputError, match="package.module:function"):
        load("no_colon_here", format="torch", inputs=(torch.randn(1),))
