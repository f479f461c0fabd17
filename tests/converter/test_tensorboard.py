"""TensorBoard graphs: event files read back by TensorFlow's own record reader and protos."""

from __future__ import annotations

import pathlib

import pytest

import ir
from converter.visual import tensorboard, tfevents

tf = pytest.importorskip("tensorflow")


def _read_graph(event_file: pathlib.Path):
    """The GraphDef in ``event_file``, parsed by TensorFlow (which checks every record's CRC)."""
    from tensorflow.core.framework import graph_pb2

    events = list(tf.compat.v1.train.summary_iterator(str(event_file)))
    assert events[0].file_version == "brain.Event:2"
    graphs = [e.graph_def for e in events if e.HasField("graph_def")]
    assert len(graphs) == 1
    return graph_pb2.GraphDef.FromString(graphs[0])


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


def test_tensorflow_rejects_a_corrupted_record(tmp_path, onnx_fixtures):
    event_file = tensorboard.write_graph(ir.load(onnx_fixtures / "mlp.onnx"), tmp_path)
    _read_graph(event_file)  # intact: reads
    data = bytearray(event_file.read_bytes())
    data[-10] ^= 0xFF
    event_file.write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        _read_graph(event_file)


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
    assert nodes["fc1/matmul"].attr["T"].type == tf.float32.as_datatype_enum
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
