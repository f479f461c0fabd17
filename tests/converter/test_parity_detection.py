"""Parity catches corrupted conversions and names the corrupted node (issue 8's detection test).

Correct conversions of the fixtures (ONNX -> ONNX and TorchScript, an
ExportedProgram -> ONNX, a Keras model -> ONNX) must pass ``crossgraph
validate``. Each converted ONNX file is then corrupted in one node, in the ways
a converter goes wrong: one weight tensor off by 1e-2, an op swapped for a
near-equivalent one (Relu -> LeakyRelu(0.01), exact Gelu -> tanh Gelu, Softmax
over another axis), a bias dropped. Every corruption must fail validation (exit
1), and localization against the source must name the node we corrupted: the
truth here is the edit itself.

The same checks run with ``--device cuda`` (TorchScript side and kernels on
the GPU) in the ``cuda``-marked variants, skipped without a CUDA device.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

import converter
from converter import parity
from converter.cli import app
from converter.localize import localize_between

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"

#: name -> (source, also convert to TorchScript)
SOURCES = {
    "cnn": (MODELS / "onnx" / "cnn.onnx", True),
    "mlp": (MODELS / "onnx" / "mlp.onnx", True),
    "attention": (MODELS / "onnx" / "attention.onnx", True),
    "resnet_like": (MODELS / "torch" / "resnet_like.pt2", False),
    "keras_cnn": (MODELS / "tf" / "cnn.keras", False),
}

#: The corruptions tried on each converted ONNX file (see ``_corrupt``).
CORRUPTIONS = {
    "cnn": ["perturb:first", "perturb:last", "swap:Relu", "drop_bias:first", "drop_bias:last"],
    "mlp": ["perturb:first", "perturb:middle", "perturb:last", "swap:Relu", "swap:Gelu", "swap:Softmax",
            "drop_bias:first", "drop_bias:last"],
    "attention": ["perturb:first", "perturb:middle", "perturb:last", "swap:Softmax"],
    "resnet_like": ["perturb:first", "perturb:middle", "perturb:last", "swap:Relu", "drop_bias:first",
                    "drop_bias:last"],
    "keras_cnn": ["perturb:first", "perturb:last", "swap:Relu", "swap:Softmax", "drop_bias:last"],
}
CASES = [(model, c) for model, kinds in CORRUPTIONS.items() for c in kinds]

runner = CliRunner()


@dataclasses.dataclass
class Conversion:
    source: pathlib.Path
    onnx: pathlib.Path
    torchscript: pathlib.Path | None
    source_ir: object  # the source loaded into the IR: localization's reference


@pytest.fixture(scope="module")
def conversions(tmp_path_factory) -> dict[str, Conversion]:
    out = tmp_path_factory.mktemp("converted")
    done = {}
    for name, (source, to_torchscript) in SOURCES.items():
        converter.convert(source, out / f"{name}.onnx")
        ts = out / f"{name}.pt" if to_torchscript else None
        if ts is not None:
            converter.convert(source, ts)
        done[name] = Conversion(source, out / f"{name}.onnx", ts, converter.load(source))
    return done


# ---- corruptions ---------------------------------------------------------------------


def _weighted_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes reading a float weight (an initializer of more than one element) as input 1."""
    inits = {t.name: t for t in model.graph.initializer}
    return [
        n for n in model.graph.node
        if len(n.input) > 1 and n.input[1] in inits and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT
        and int(np.prod(inits[n.input[1]].dims)) > 1
    ]


def _biased_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Conv and Gemm nodes whose bias is an initializer with a nonzero element (else dropping it is no change)."""
    inits = {t.name: t for t in model.graph.initializer}
    return [
        n for n in model.graph.node
        if n.op_type in ("Conv", "Gemm") and len(n.input) == 3 and n.input[2] in inits
        and np.any(numpy_helper.to_array(inits[n.input[2]]) != 0)
    ]


def _pick(nodes: list[onnx.NodeProto], which: str) -> onnx.NodeProto:
    assert nodes, "no node to corrupt"
    return {"first": nodes[0], "middle": nodes[len(nodes) // 2], "last": nodes[-1]}[which]


def _perturb(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    """Every element of ``node``'s weight moves by 1e-2, up or down at random (seeded).

    Changed in a copy of the initializer that only ``node`` reads. Not one
    element alone: that can be invisible on every input (fc2.weight[0, 0] of the
    mlp multiplies a unit the Relu before it keeps at zero on the random inputs:
    the outputs differ by 5e-7). Not the same shift everywhere either: before a
    Softmax, or after a LayerNorm, a uniform shift cancels exactly.
    """
    init = next(t for t in model.graph.initializer if t.name == node.input[1])
    array = numpy_helper.to_array(init)
    signs = np.random.default_rng(0).choice(np.array([-1.0, 1.0], np.float32), size=array.shape)
    array = array + np.float32(1e-2) * signs
    name = f"{init.name}__perturbed"
    model.graph.initializer.append(numpy_helper.from_array(array, name))
    node.input[1] = name


def _swap(node: onnx.NodeProto) -> None:
    if node.op_type == "Relu":
        node.op_type = "LeakyRelu"
        node.attribute.append(onnx.helper.make_attribute("alpha", 0.01))
    elif node.op_type == "Gelu":
        node.attribute.append(onnx.helper.make_attribute("approximate", "tanh"))
    elif node.op_type == "Softmax":
        kept = [a for a in node.attribute if a.name != "axis"]
        del node.attribute[:]
        node.attribute.extend([*kept, onnx.helper.make_attribute("axis", 0)])  # over the batch, not the classes


def _corrupt(path: pathlib.Path, kind: str, destination: pathlib.Path) -> str:
    """Write ``path`` with one corruption to ``destination``; returns the corrupted node's output name."""
    model = onnx.load(str(path))
    action, _, which = kind.partition(":")
    if action == "perturb":
        node = _pick(_weighted_nodes(model), which)
        _perturb(model, node)
    elif action == "swap":
        node = next(n for n in model.graph.node if n.op_type == which)
        _swap(node)
    else:
        node = _pick(_biased_nodes(model), which)
        del node.input[2]
    onnx.checker.check_model(model)
    onnx.save(model, str(destination))
    return node.output[0]


# ---- the checks ------------------------------------------------------------------------


def _names_culprit(divergence, culprit: str, corrupted: pathlib.Path) -> bool:
    """The divergence is the corrupted node's output, or the corrupted node starts its region.

    A value -O2 created (Q/K/V MatMuls merged into one, then split) has no
    counterpart in the source; the divergence is then measured at the next
    matched value and its region (at most 3 nodes here) starts at the culprit.
    """
    if divergence.output == culprit:
        return True
    node = next(n for n in onnx.load(str(corrupted)).graph.node if culprit in n.output)
    return len(divergence.region) <= 3 and divergence.region[0] == (node.name or node.output[0])


def _validate(source: pathlib.Path, converted: pathlib.Path, *extra: str):
    result = runner.invoke(app, ["validate", str(source), str(converted), "--json", *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _feeds(conversion: Conversion) -> dict[str, np.ndarray]:
    return parity.make_inputs(parity.ir_signature(conversion.source_ir), seed=0)


@pytest.mark.parametrize("name", list(SOURCES))
def test_correct_conversions_pass(conversions, name):
    conv = conversions[name]
    targets = [conv.onnx] + ([conv.torchscript] if conv.torchscript else [])
    for target in targets:
        code, report = _validate(conv.source, target)
        assert code == 0 and report["passed"], (target, report["outputs"])
    # the localizer finds nothing to blame where nothing is wrong
    found = localize_between(conv.source_ir, converter.load(conv.onnx), _feeds(conv))
    assert found.first is None and found.compared >= 3, found.summary()


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{m}-{k}" for m, k in CASES])
def test_corruption_is_caught_and_localized(conversions, tmp_path, name, kind):
    conv = conversions[name]
    corrupted = tmp_path / f"{name}.onnx"
    culprit = _corrupt(conv.onnx, kind, corrupted)
    code, report = _validate(conv.source, corrupted)
    assert code == 1 and not report["passed"], report["outputs"]
    found = localize_between(conv.source_ir, converter.load(corrupted), _feeds(conv), repro_dir=tmp_path / "repro")
    assert found.first is not None, found.summary()
    assert _names_culprit(found.first, culprit, corrupted), found.summary()
    # isolation: nothing downstream of the corrupted node is blamed for its error
    assert found.worst is not None and _names_culprit(found.worst, culprit, corrupted), found.summary()
    assert pathlib.Path(found.repro).is_file()


def test_repro_reproduces_the_divergence(conversions, tmp_path):
    import onnxruntime as ort

    conv = conversions["mlp"]
    corrupted = tmp_path / "mlp.onnx"
    culprit = _corrupt(conv.onnx, "swap:Gelu", corrupted)
    found = localize_between(conv.source_ir, converter.load(corrupted), _feeds(conv), repro_dir=tmp_path)
    repro = pathlib.Path(found.repro)
    inputs = dict(np.load(repro.with_name(repro.stem + "_inputs.npz")))
    expected = np.load(repro.with_name(repro.stem + "_expected.npz"))[culprit]
    session = ort.InferenceSession(str(repro), providers=["CPUExecutionProvider"])
    (actual,) = session.run([culprit], inputs)
    assert [n.op_type for n in onnx.load(str(repro)).graph.node] == ["Gelu"]
    assert np.abs(actual - expected).max() == pytest.approx(found.first.max_abs_error)
    assert found.first.max_abs_error > 1e-5


@pytest.mark.parametrize("name", ["resnet_like", "keras_cnn"])
def test_cli_localize_names_the_corrupted_node(conversions, tmp_path, name):
    """Through the command: needs parity to localize against the source (see the localize_between wiring)."""
    conv = conversions[name]
    corrupted = tmp_path / f"{name}.onnx"
    culprit = _corrupt(conv.onnx, "perturb:middle" if name == "resnet_like" else "swap:Relu", corrupted)
    code, report = _validate(conv.source, corrupted, "--localize", "--repro-dir", str(tmp_path / "repro"))
    assert code == 1
    assert report["localization"]["first"]["output"] == culprit, report["localization"]


# ---- on the GPU --------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["cnn", "mlp", "attention"])
def test_correct_torchscript_passes_on_cuda(conversions, name):
    conv = conversions[name]
    code, report = _validate(conv.source, conv.torchscript, "--device", "cuda")
    assert code == 0 and report["device"] == "cuda", report["outputs"]


@pytest.mark.cuda
@pytest.mark.parametrize(("name", "kind"), [c for c in CASES if c[0] in ("cnn", "mlp", "attention")],
                         ids=[f"{m}-{k}" for m, k in CASES if m in ("cnn", "mlp", "attention")])
def test_corruption_is_caught_and_localized_on_cuda(conversions, tmp_path, name, kind):
    """The corrupted ONNX file, converted on to TorchScript, against the source on CUDA."""
    conv = conversions[name]
    corrupted = tmp_path / f"{name}.onnx"
    culprit = _corrupt(conv.onnx, kind, corrupted)
    as_torchscript = tmp_path / f"{name}.pt"
    converter.convert(corrupted, as_torchscript, check=False, optimize=0)
    code, report = _validate(conv.source, as_torchscript, "--device", "cuda")
    assert code == 1 and report["device"] == "cuda"
    found = localize_between(conv.source_ir, converter.load(corrupted), _feeds(conv), runtime="torch", device="cuda")
    assert found.first is not None and found.first.output == culprit, found.summary()
