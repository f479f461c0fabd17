"""The PyTorch front end on the fixture models: torch's own outputs are the truth.

Each ``fixtures/models/torch/<name>.pt2`` is converted, saved to ONNX and run in
onnxruntime at two sizes of every dynamic dim (which proves the dims stayed
dynamic), and compared with the ExportedProgram run eagerly in torch.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import ir  # noqa: E402
from converter.frontends.torch import load  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402
from fixtures.build_torch_fixtures import SPECS, example  # noqa: E402

MODELS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models" / "torch"
SIZES = [{"batch": 2, "seq": 3}, {"batch": 5, "seq": 9}]


def ort_run(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the model, serialized to ONNX, in onnxruntime."""
    proto = ir.to_proto(model)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def torch_outputs(result: object) -> list[np.ndarray]:
    """Flatten a module's outputs (tensor, tuple, dict) to numpy arrays in order."""
    leaves, _ = torch.utils._pytree.tree_flatten(result)
    return [t.detach().numpy() for t in leaves]


def assert_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def specs_of(name: str) -> list[InputSpec]:
    return [InputSpec(n, shape, dtype) for n, shape, dtype in SPECS[name][1]]


@pytest.fixture(scope="module", params=sorted(SPECS))
def converted(request: pytest.FixtureRequest) -> tuple[str, ir.Model, object]:
    name = request.param
    path = MODELS / f"{name}.pt2"
    model = load(path, format="exported_program", inputs=specs_of(name))
    return name, model, torch.export.load(str(path)).module()


def test_fixture_matches_torch_at_two_sizes(converted: tuple[str, ir.Model, object]) -> None:
    name, model, module = converted
    spec = SPECS[name][1]
    for seed, sizes in enumerate(SIZES):
        args = example(spec, sizes, seed=seed + 10)
        feeds = {n: a.numpy() for (n, _, _), a in zip(spec, args, strict=True)}
        with torch.no_grad():
            want = torch_outputs(module(*args))
        assert_close(ort_run(model, feeds), want)


def test_fixture_keeps_the_users_names_and_symbols(converted: tuple[str, ir.Model, object]) -> None:
    name, model, _ = converted
    ir.verify(model)
    spec = SPECS[name][1]
    assert [v.name for v in model.graph.inputs] == [n for n, _, _ in spec]
    for value, (_, shape, _) in zip(model.graph.inputs, spec, strict=True):
        assert [d if isinstance(d, int) else d.value for d in value.shape] == list(shape)


def test_fixture_passes_the_onnx_checker_with_shape_inference(converted: tuple[str, ir.Model, object]) -> None:
    import onnx

    onnx.checker.check_model(ir.to_proto(converted[1]), full_check=True)


def test_output_names_follow_the_returned_structure(converted: tuple[str, ir.Model, object]) -> None:
    name, model, _ = converted
    names = [v.name for v in model.graph.outputs]
    expected = {
        "multi_out": ["logits", "probs", "best"],
        "tuple_out": ["output_0", "output_1", "output_2"],
        "lstm": ["output_0", "output_1"],
    }.get(name, ["output"])
    assert names == expected


def test_weights_are_initializers_and_every_node_has_provenance(converted: tuple[str, ir.Model, object]) -> None:
    name, model, _ = converted
    assert model.graph.initializers
    nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
    assert all(ir.source_name(n, default="") for n in nodes)


def test_resnet_provenance_names_the_modules() -> None:
    model = load(MODELS / "resnet_like.pt2", format="exported_program")
    convs = {ir.source_name(n) for n in model.graph if n.op_type == "Conv"}
    assert {"conv1", "layer1.0.conv1", "layer4.1.conv2", "layer2.0.downsample.0"} <= convs
    assert "layer1.0.conv1.weight" in model.graph.initializers
    assert {n.op_type for n in model.graph} >= {"Conv", "BatchNormalization", "MaxPool", "ReduceMean", "Gemm"}


def test_cond_becomes_if_and_takes_both_branches() -> None:
    model = load(MODELS / "cond.pt2", format="exported_program")
    assert [n.op_type for n in model.graph].count("If") == 1
    module = torch.export.load(str(MODELS / "cond.pt2")).module()
    for sign in (1.0, -1.0):
        x = torch.rand(3, 6) * sign
        assert_close(ort_run(model, {"x": x.numpy()}), torch_outputs(module(x)))
