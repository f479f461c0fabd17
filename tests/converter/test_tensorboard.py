"""TensorBoard graphs: event files read back by TensorBoard's own loader (``EventAccumulator``).

The accumulator is what ``tensorboard --logdir`` runs to fill the Graphs tab:
it finds the event files of a run, checks every record's CRC and parses the
GraphDef with TensorBoard's protos. Node counts, scopes and shapes are checked
against the IR the graph was written from.
"""

from __future__ import annotations

import pathlib

import pytest

import ir
from converter.visual import tensorboard, tfevents

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.compat.proto import types_pb2  # noqa: E402


def _accumulator(event_file: pathlib.Path):
    """TensorBoard's loader over the run directory holding ``event_file``, loaded."""
    acc = event_accumulator.EventAccumulator(str(event_file.parent))
    acc.Reload()
    return acc


def _read_graph(event_file: pathlib.Path):
    """The GraphDef TensorBoard shows for the run of ``event_file``."""
    acc = _accumulator(event_file)
    assert acc.Tags()["graph"], "TensorBoard found no graph"
    assert acc.file_version == 2.0  # the "brain.Event:2" record comes first
    return acc.Graph()


def _nodes(gd) -> dict:
    return {n.name: n for n in gd.node}


def _dims(attr_value) -> list[list[tuple[int, str]]]:
    return [[(d.size, d.name) for d in s.dim] for s in attr_value.list.shape]


def _expected_node_count(model: ir.Model) -> int:
    nodes = sum(1 for _ in ir.traversal.RecursiveGraphIterator(model.graph))
    values = 0
    graphs = [model.graph] + [
        a.value for n in ir.traversal.RecursiveGraphIterator(model.graph)
        for a in n.attributes.values() if a.type == ir.AttributeType.GRAPH
    ]
    for g in graphs:
        values += len(set(g.inputs) | set(g.initializers.values()))
    return nodes + values


def test_crc32c_matches_the_castagnoli_check_value():
    assert tfevents.crc32c(b"123456789") == 0xE3069283


def test_tensorboard_checks_the_record_crc(tmp_path, onnx_fixtures):
    event_file = tensorboard.write_graph(ir.load(onnx_fixtures / "mlp.onnx"), tmp_path)
    _read_graph(event_file)  # intact: reads
    data = bytearray(event_file.read_bytes())
    data[-10] ^= 0xFF  # a byte of the GraphDef record's payload
    event_file.write_bytes(bytes(data))
    assert not _accumulator(event_file).Tags()["graph"]


def test_mlp_graph_has_scopes_ops_and_symbolic_shapes(tmp_path, onnx_fixtures):
    model = ir.load(onnx_fixtures / "mlp.onnx")
    event_file = tensorboard.write_graph(model, tmp_path, run_name="mlp")
    assert event_file.parent == tmp_path / "mlp" and "tfevents" in event_file.name
    gd = _read_graph(event_file)
    nodes = _nodes(gd)
    assert len(gd.node) == _expected_node_count(model) == 16
    # initializers grouped by module, named after their values
    assert nodes["fc1/weight"].op == "Const"
    assert _dims(nodes["fc1/weight"].attr["_output_shapes"]) == [[(32, ""), (64, "")]]
    # the graph input keeps its symbolic dim by name
    assert nodes["x"].op == "Placeholder"
    assert _dims(nodes["x"].attr["_output_shapes"]) == [[(-1, "batch"), (32, "")]]
    # op types and edges
    assert nodes["fc1/matmul"].op == "MatMul"
    assert list(nodes["fc1/matmul"].input) == ["x", "fc1/weight"]
    assert list(nodes["softmax"].input) == ["fc3/add"]
    # shapes of intermediate values come from shape inference, dtypes as TF enums
    assert _dims(nodes["fc1/matmul"].attr["_output_shapes"]) == [[(-1, "batch"), (64, "")]]
    assert nodes["fc1/matmul"].attr["T"].type == types_pb2.DT_FLOAT
    assert nodes["softmax"].attr["axis"].i == -1
    assert nodes["softmax"].attr["outputs"].s == b"probs: float[batch, 10]"
    # the model itself is not annotated by the inference
    assert all(node.outputs[0].shape is None for node in model.graph if node.op_type != "Softmax")


def test_control_flow_bodies_are_nested_scopes(tmp_path, onnx_fixtures):
    model = ir.load(onnx_fixtures / "control_flow.onnx")
    gd = _read_graph(tensorboard.write_graph(model, tmp_path))
    nodes = _nodes(gd)
    assert len(gd.node) == _expected_node_count(model)
    assert nodes["branch/If"].op == "If"
    assert nodes["branch/then_branch/then/mul"].op == "Mul"
    assert nodes["branch/else_branch/else/neg"].op == "Neg"
    assert nodes["repeat/Loop"].op == "Loop"
    assert nodes["repeat/body/acc_in"].op == "Placeholder"
    assert nodes["repeat/body/loop/add"].op == "Add"
    # a body reads outer values across scopes; the bodies' results feed the node as control edges
    assert list(nodes["repeat/body/loop/add"].input) == ["repeat/body/acc_in", "branch/If"]
    assert "^branch/then_branch/then/mul" in nodes["branch/If"].input
    assert list(nodes["repeat/Loop"].input)[:3] == ["trips", "true", "branch/If"]
    assert _dims(nodes["repeat/Loop"].attr["_output_shapes"]) == [[(-1, "batch"), (4, "")]]


def _torch_like_model() -> ir.Model:
    model = ir.from_onnx_text(
        """<ir_version: 10, opset_import: ["" : 21]>
        g (float[batch, 8] x, float[8, 8] w) => (float[batch, 8] y, int64[batch, 2] idx) {
            m = MatMul(x, w)
            a = Add(m, x)
            r = Relu(a)
            c = Relu(r)
            k = Constant<value = int64[1] {2}>()
            y, idx = TopK<axis = 1>(c, k)
        }"""
    )
    names = ["fc1", "fc1", "layer1.0.relu", "layer1.0", "head.topk", "head.topk"]
    for node, name in zip(model.graph, names, strict=True):
        ir.set_source_name(node, name, "torch")
    return model


def test_module_paths_become_unique_scopes(tmp_path):
    model = _torch_like_model()
    gd = _read_graph(tensorboard.write_graph(model, tmp_path))
    nodes = _nodes(gd)
    # a module making several nodes: one scope, op types inside
    assert nodes["fc1/MatMul"].op == "MatMul" and nodes["fc1/Add"].op == "Add"
    # a node whose name is also a scope of another moves inside its scope
    assert nodes["layer1/0/relu"].op == "Relu"
    assert nodes["layer1/0/Relu"].op == "Relu"
    assert nodes["layer1/0/Relu"].attr["source_name"].s == b"layer1.0"
    assert nodes["head/topk/TopK"].input[1] == "head/topk/Constant"
    # a second output is referenced as name:index; its dtype stays per output
    assert _dims(nodes["head/topk/TopK"].attr["_output_shapes"]) == [[(-1, "batch"), (8, "")], [(-1, "batch"), (2, "")]]
    assert nodes["head/topk/TopK"].attr["outputs"].s == b"y: float[batch, 8]; idx: int64[batch, 2]"
    scopes = {n.name.rsplit("/", i)[0] for n in gd.node for i in range(1, n.name.count("/") + 1)}
    assert not scopes & set(nodes), "a node name is also a scope"
    assert len(nodes) == len(gd.node) == _expected_node_count(model)


def test_side_by_side_writes_two_runs(tmp_path, onnx_fixtures):
    import passes

    source = ir.load(onnx_fixtures / "mlp.onnx")
    result = ir.load(onnx_fixtures / "mlp.onnx")
    passes.optimize(result, 2)
    files = tensorboard.write_side_by_side(source, result, tmp_path)
    assert set(files) == {"source", "converted"}
    assert files["source"].parent.name == "source" and files["converted"].parent.name == "converted"
    before, after = _read_graph(files["source"]), _read_graph(files["converted"])
    assert len(before.node) == 16
    assert [n.op for n in after.node if n.op not in ("Placeholder", "Const")] == [
        "Gemm", "Relu", "Gemm", "Gelu", "Gemm", "Softmax"
    ]
    # rewriting a run replaces its graph
    tensorboard.write_graph(result, tmp_path, run_name="source")
    assert len(list((tmp_path / "source").iterdir())) == 1


def test_resnet_like_graph_matches_the_ir_and_onnxruntime(tmp_path):
    """A torch model: module paths as scopes, every node present, shapes as onnxruntime computes them."""
    import re

    import converter
    from converter import parity
    from converter.localize import _onnxruntime_intermediates

    root = pathlib.Path(__file__).resolve().parents[2]
    model = converter.load(root / "fixtures" / "models" / "torch" / "resnet_like.pt2")
    gd = _read_graph(tensorboard.write_graph(model, tmp_path, run_name="resnet_like"))
    nodes = _nodes(gd)
    assert len(gd.node) == _expected_node_count(model)
    # every IR node sits in the scope of its module path (layer1.0.conv1 -> layer1/0/conv1[/...])
    for node in model.graph:
        path = "/".join(re.split(r"[/.]", ir.source_name(node)))
        assert any(name == path or name.startswith(path + "/") for name in nodes), path
    assert {"layer1", "layer2", "layer3", "layer4", "fc"} <= {name.split("/")[0] for name in nodes}
    # each value's edge shape is the one onnxruntime produces (symbolic dims: batch = 2)
    feeds = parity.make_inputs(parity.ir_signature(model), {"batch": 2})
    actual = _onnxruntime_intermediates(model, feeds)
    checked = 0
    for nd in gd.node:
        if nd.op in ("Placeholder", "Const"):
            continue
        outputs = [part.split(":")[0] for part in nd.attr["outputs"].s.decode().split("; ")]
        for name, dims in zip(outputs, _dims(nd.attr["_output_shapes"]), strict=True):
            if name in actual:
                assert [2 if (size, sym) == (-1, "batch") else size for size, sym in dims] == list(actual[name].shape)
                checked += 1
    assert checked == sum(len(n.outputs) for n in model.graph)


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_a_log_directory_that_cannot_be_written_exits_2(tmp_path, onnx_fixtures, command):
    from typer.testing import CliRunner

    from converter.cli import app

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the log directory should go\n")
    destination = tmp_path / "mlp.onnx"
    args = [command, str(onnx_fixtures / "mlp.onnx")] + ([str(destination)] if command == "convert" else [])
    result = CliRunner().invoke(app, [*args, "--tensorboard", str(blocker / "logs")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not_a_dir" in lines[0], result.stderr
    assert not destination.exists()


def test_write_graph_refuses_a_file_as_log_directory(tmp_path, onnx_fixtures):
    from converter.errors import InputError

    blocker = tmp_path / "events"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot be written"):
        tensorboard.write_graph(ir.load(onnx_fixtures / "mlp.onnx"), blocker)
    with pytest.raises(InputError, match="is a file"):
        tensorboard.check_logdir(blocker / "run")
