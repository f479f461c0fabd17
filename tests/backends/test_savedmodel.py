"""The SavedModel back end against onnxruntime, loaded where crossgraph is not importable.

Each model (the ONNX fixtures and a chain of four convolutions) is saved as a
SavedModel; one subprocess with a clean environment (no PYTHONPATH, a cwd
outside the repository) loads every directory with ``tf.saved_model.load``,
runs ``serving_default`` at two batch sizes and returns the outputs and the
signature's names, which are compared with onnxruntime's outputs on the same
inputs. ``saved_model_cli show --all`` must also read a directory, and a chain
of convolutions must not pay a transpose pair per layer.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import ir  # noqa: E402
from converter.backends import savedmodel  # noqa: E402

FIXTURES = ["cnn", "mlp", "attention", "control_flow"]
BATCHES = (1, 3)

_LOADER = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    try:
        import crossgraph, converter  # noqa: F401
        raise SystemExit("crossgraph is importable in the clean process")
    except ImportError:
        pass
    root = sys.argv[1]
    report = {}
    for name in json.loads(open(os.path.join(root, "models.json")).read()):
        fn = tf.saved_model.load(os.path.join(root, name)).signatures["serving_default"]
        _, specs = fn.structured_input_signature
        report[name] = {"inputs": sorted(specs), "outputs": sorted(fn.structured_outputs)}
        for batch in (1, 3):
            feeds = np.load(os.path.join(root, f"{name}_in_{batch}.npz"))
            out = fn(**{k: tf.constant(feeds[k]) for k in feeds.files})
            np.savez(os.path.join(root, f"{name}_out_{batch}.npz"), **{k: v.numpy() for k, v in out.items()})
    print(json.dumps(report))
""")


def _conv_chain() -> ir.Model:
    """x -> Conv -> Relu -> Conv(group 2) -> BatchNorm -> Add(residual) -> Conv(stride 2) -> Relu -> Conv(depthwise) -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("BatchNormalization", ["c2", "s", "bb", "m", "v"], ["n2"]),
        helper.make_node("Add", ["n2", "r1"], ["a2"]),
        helper.make_node("Conv", ["a2", "w3", "b3"], ["c3"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Conv", ["r3", "w4"], ["y"], pads=[1, 1, 1, 1], group=8, dilations=[1, 1]),
    ]
    inits = [w("w1", 8, 3, 3, 3), w("b1", 8), w("w2", 8, 4, 3, 3), w("w3", 8, 8, 3, 3), w("b3", 8), w("w4", 8, 1, 3, 3),
             w("s", 8), w("bb", 8), w("m", 8), numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "v")]
    graph = helper.make_graph(
        nodes, "conv_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 8, 8])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    onnx.checker.check_model(proto)
    return ir.from_proto(proto)


def _models(onnx_fixtures: pathlib.Path) -> dict[str, ir.Model]:
    models = {name: ir.load(onnx_fixtures / f"{name}.onnx") for name in FIXTURES}
    models["conv_chain"] = _conv_chain()
    return models


def _feeds(model: ir.Model, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in model.graph.inputs:
        shape = [batch if not isinstance(d, int) else d for d in v.shape]
        if v.dtype == ir.DataType.INT64:
            feeds[v.name] = np.asarray(rng.integers(1, 4), np.int64).reshape(shape)
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(v.dtype.numpy())
    return feeds


@pytest.fixture(scope="module")
def saved(tmp_path_factory, onnx_fixtures):
    """Every model saved, inputs written, and the clean subprocess's report and outputs."""
    root = tmp_path_factory.mktemp("savedmodels")
    models = _models(onnx_fixtures)
    manifests = {}
    for name, model in models.items():
        savedmodel.save(model, root / name)
        manifests[name] = json.loads((root / name / "assets.extra" / "crossgraph.json").read_text())
        for batch in BATCHES:
            np.savez(root / f"{name}_in_{batch}.npz", **_feeds(model, batch, seed=batch))
    (root / "models.json").write_text(json.dumps(list(models)))
    (root / "load.py").write_text(_LOADER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, "-I", str(root / "load.py"), str(root)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return root, models, manifests, report


@pytest.mark.parametrize("name", [*FIXTURES, "conv_chain"])
@pytest.mark.parametrize("batch", BATCHES)
def test_outputs_match_onnxruntime_in_a_process_without_crossgraph(saved, name: str, batch: int) -> None:
    import onnxruntime as ort

    root, models, _, _ = saved
    model = models[name]
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = dict(np.load(root / f"{name}_in_{batch}.npz"))
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    got = dict(np.load(root / f"{name}_out_{batch}.npz"))
    assert sorted(got) == sorted(expected)
    for key, exp in expected.items():
        assert got[key].shape == exp.shape, key
        np.testing.assert_allclose(got[key], exp, rtol=1e-4, atol=1e-5, err_msg=f"{name}:{key} batch {batch}")


@pytest.mark.parametrize("name", [*FIXTURES, "conv_chain"])
def test_serving_signature_uses_the_model_names(saved, name: str) -> None:
    _, models, manifests, report = saved
    model = models[name]
    assert report[name]["inputs"] == sorted(v.name for v in model.graph.inputs)
    assert report[name]["outputs"] == sorted(v.name for v in model.graph.outputs)
    assert [e["name"] for e in manifests[name]["inputs"]] == [v.name for v in model.graph.inputs]
    symbols = [d for e in manifests[name]["inputs"] for d in e["shape"] if isinstance(d, str)]
    assert "batch" in symbols


def test_transposes_in_the_traced_graph(saved) -> None:
    """A chain of NCHW convolutions transposes once in and once out; without layout tracking, per layer."""
    _, models, manifests, _ = saved
    counts = {name: m["transposes"] for name, m in manifests.items()}
    print("Transpose ops per model:", counts)
    assert counts["conv_chain"] <= 2
    assert counts["cnn"] <= 2
    naive = savedmodel.build(models["conv_chain"], channels_last=False).transpose_count()
    print("conv_chain without layout tracking:", naive)
    assert naive >= 8  # at least one pair per convolution


def test_conv_weights_are_variables_stored_pre_transposed(saved) -> None:
    _, models, _, _ = saved
    built = savedmodel.build(models["conv_chain"])
    shapes = {v.name.split(":")[0]: tuple(v.shape) for v in built.module.weights}
    assert shapes["w1"] == (3, 3, 3, 8)  # [kh, kw, C, M], TensorFlow's filter layout
    assert "w1" in shapes and len([n for n in shapes if n.startswith("w1")]) == 1


def test_saved_model_cli_reads_the_directory(saved) -> None:
    root, _, _, _ = saved
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed beside this python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([str(cli), "show", "--dir", str(root / "cnn"), "--all"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "serving_default" in proc.stdout
    assert "inputs['x']" in proc.stdout and "outputs['logits']" in proc.stdout


def test_names_are_sanitized_and_unique() -> None:
    assert savedmodel.sanitize_names(["input:0", "input/0", "0x", "ok"]) == {
        "input:0": "input_0", "input/0": "input_0_1", "0x": "t_0x", "ok": "ok"}


def test_python_keywords_get_a_trailing_underscore() -> None:
    assert savedmodel.sanitize_names(["class", "def", "self", "class_"]) == {
        "class": "class_", "def": "def_", "self": "self", "class_": "class__1"}


def test_inputs_named_like_python_keywords_save_and_match_onnxruntime(tmp_path) -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("Add", ["input.1", "class"], ["out:0"]), helper.make_node("Neg", ["def"], ["self"])], "g",
        [helper.make_tensor_value_info(n, f, ["batch", 3]) for n in ("input.1", "class")]
        + [helper.make_tensor_value_info("def", f, [2])],
        [helper.make_tensor_value_info("out:0", f, ["batch", 3]), helper.make_tensor_value_info("self", f, [2])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    savedmodel.save(ir.from_proto(proto), tmp_path / "m")  # "'class' is not a valid parameter name" before
    run, manifest = _load_signature(tmp_path / "m")
    assert {e["name"]: e["signature_name"] for e in manifest["inputs"]} == {
        "input.1": "input_1", "class": "class_", "def": "def_"}
    rng = np.random.default_rng(0)
    feeds = {"input.1": rng.standard_normal((2, 3), np.float32), "class": rng.standard_normal((2, 3), np.float32),
             "def": rng.standard_normal(2, np.float32)}
    expected = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(run(feeds), expected[0], rtol=1e-6)


def test_missing_kernels_are_listed_together(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from kernels.executor import MissingKernelsError

    graph = helper.make_graph(
        [helper.make_node("Multinomial", ["p"], ["s"]), helper.make_node("Bernoulli", ["p"], ["b"])], "g",
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("s", TensorProto.INT32, [2, 1]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3])])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    onnx.checker.check_model(ir.to_proto(model))
    with pytest.raises(MissingKernelsError) as info:
        savedmodel.save(model, tmp_path / "m")
    assert {op for op, _ in info.value.missing} == {"Multinomial", "Bernoulli"}


def test_sequence_signature_is_refused_with_a_clear_error(tmp_path) -> None:
    from onnx import TensorProto, helper

    from converter.errors import NotYetSupportedError

    graph = helper.make_graph(
        [helper.make_node("SplitToSequence", ["x"], ["s"], axis=0)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    with pytest.raises(NotYetSupportedError, match="sequences or optionals"):
        savedmodel.save(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --- dynamic spatial sizes ---------------------------------------------------------


def _dynamic_spatial() -> ir.Model:
    """x[batch, 3, h, w] -> Conv(SAME_UPPER, stride 2) -> MaxPool(ceil_mode) -> AveragePool(pads, count_include_pad=0)
    -> Conv(SAME_LOWER, stride 2) -> ConvTranspose(SAME_UPPER, stride 2) -> Resize(linear, scales 2) -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["p1"], ["p2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("Conv", ["p2", "w2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
        helper.make_node("ConvTranspose", ["c2", "w3"], ["t1"], kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Resize", ["t1", "", "scales"], ["y"], mode="linear"),
    ]
    inits = [w("w1", 8, 3, 3, 3), w("b1", 8), w("w2", 8, 8, 3, 3), w("w3", 8, 4, 3, 3),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    graph = helper.make_graph(
        nodes, "dynamic_spatial", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, "oh", "ow"])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    onnx.checker.check_model(proto)
    return ir.from_proto(proto)


def test_same_padding_ceil_mode_conv_transpose_and_resize_with_dynamic_spatial_sizes(tmp_path) -> None:
    """One SavedModel, its height and width None in the signature, matches onnxruntime at several sizes."""
    import onnxruntime as ort
    import tensorflow as tf

    model = _dynamic_spatial()
    savedmodel.save(model, tmp_path / "m")
    fn = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    assert fn.structured_input_signature[1]["x"].shape.as_list() == [None, 3, None, None]
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 17, 23), (2, 3, 32, 9), (1, 3, 8, 8)]:
        x = rng.standard_normal(shape).astype(np.float32)
        expected = session.run(None, {"x": x})[0]
        got = fn(x=tf.constant(x))["y"].numpy()
        assert got.shape == expected.shape, shape
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5, err_msg=str(shape))


# --- the onnx package's light model zoo ----------------------------------------------

#: Per-model tolerances of onnx's own backend test for these models (rtol, atol).
ZOO_TOLERANCE = {"densenet121": (2e-3, 1e-7)}
#: Zoo models run in the default suite (as shipped / with random weights); the others are marked slow
#: (exports take 5-35 s each, and random weights for the fully connected layers of the large ones more).
ZOO_FAST = {"stored": {"squeezenet", "bvlc_alexnet"}, "random": {"squeezenet"}}


def _light_dir() -> pathlib.Path:
    import onnx

    return pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _light_names() -> list[str]:
    return sorted(p.stem.removeprefix("light_") for p in _light_dir().glob("light_*.onnx"))


def runner_inputs(model: ir.Model) -> dict[str, np.ndarray]:
    """The inputs onnx's backend runner feeds a light model (``arange(n) / n``), by name."""
    feeds = {}
    for value in model.graph.inputs:
        if not value.is_initializer():
            shape = [d if isinstance(d, int) else 1 for d in value.shape]
            n = int(np.prod(shape))
            feeds[value.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def with_random_weights(model: ir.Model, seed: int = 0) -> ir.Model:
    """The light models generate every weight with ConstantOfShape (a constant fill); replace each by
    a random initializer (He-scaled for weights, in [0.5, 1.5] for 1-D parameters such as variances)."""
    rng = np.random.default_rng(seed)
    for node in list(model.graph):
        shape_value = node.inputs[0] if node.op_type == "ConstantOfShape" else None
        if shape_value is None or shape_value.const_value is None:
            continue
        shape = [int(d) for d in shape_value.const_value.numpy()]
        if len(shape) >= 2:
            array = rng.standard_normal(shape) * np.sqrt(2.0 / max(1, int(np.prod(shape[1:]))))
        else:
            array = rng.uniform(0.5, 1.5, shape)
        weight = ir.Value(name=node.outputs[0].name + "_random", const_value=ir.tensor(array.astype(np.float32)))
        model.graph.register_initializer(weight)
        node.outputs[0].replace_all_uses_with(weight)
        model.graph.remove(node, safe=True)
    model.ir_version = max(model.ir_version or 0, 4)  # initializers need not be graph inputs
    return model


def _load_signature(path: pathlib.Path):
    import tensorflow as tf

    manifest = json.loads((path / "assets.extra" / "crossgraph.json").read_text())
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    names = {e["name"]: e["signature_name"] for e in manifest["inputs"]}
    out = manifest["outputs"][0]["signature_name"]

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return fn(**{names[k]: tf.constant(v) for k, v in feeds.items()})[out].numpy()

    return run, manifest


def _zoo_params(kind: str):
    return [pytest.param(n, id=n, marks=[] if n in ZOO_FAST[kind] else [pytest.mark.slow]) for n in _light_names()]


@pytest.mark.parametrize("name", _zoo_params("stored"))
def test_light_zoo_model_matches_its_stored_output(tmp_path, name: str) -> None:
    """The model as shipped (constant-filled weights) on onnx's runner input, against the stored output."""
    import onnx.numpy_helper

    model = ir.load(_light_dir() / f"light_{name}.onnx")
    feeds = runner_inputs(model)
    savedmodel.save(model, tmp_path / name)
    run, manifest = _load_signature(tmp_path / name)
    expected = onnx.numpy_helper.to_array(onnx.load_tensor(str(_light_dir() / f"light_{name}_output_0.pb")))
    rtol, atol = ZOO_TOLERANCE.get(name, (1e-3, 1e-7))
    np.testing.assert_allclose(run(feeds), expected, rtol=rtol, atol=atol)
    print(f"{name}: Transpose ops {manifest['transposes']}, on activations {manifest['activation_transposes']}")


@pytest.mark.parametrize("name", _zoo_params("random"))
def test_light_zoo_model_with_random_weights_matches_onnxruntime(tmp_path, name: str) -> None:
    """With random weights (stored as variables, conv filters pre-transposed) on a random input."""
    import onnxruntime as ort

    model = with_random_weights(ir.load(_light_dir() / f"light_{name}.onnx"))
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in runner_inputs(model).items()}
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)[0]
    savedmodel.save(model, tmp_path / name)
    run, manifest = _load_signature(tmp_path / name)
    scale = max(1.0, float(np.abs(expected).max()))  # densenet121 ends in logits of size ~60, not probabilities
    np.testing.assert_allclose(run(feeds), expected, rtol=1e-3, atol=1e-5 * scale)
    assert manifest["activation_transposes"] <= ZOO_ACTIVATION_TRANSPOSES[name], manifest["activation_transposes"]


#: Transposes of activations measured per zoo model (a channel shuffle or a Reshape to NCHW needs them).
ZOO_ACTIVATION_TRANSPOSES = {"bvlc_alexnet": 2, "densenet121": 1, "inception_v1": 1, "inception_v2": 1,
                             "resnet50": 1, "shufflenet": 49, "squeezenet": 3, "vgg19": 2, "zfnet512": 2}


def test_mapped_weights_are_unmapped_after_export_and_the_model_still_reads_them(tmp_path, onnx_fixtures) -> None:
    """The export copies each external weight into a variable and closes its memory map; the IR maps
    the file again when read, and the SavedModel computes what onnxruntime does."""
    import onnxruntime as ort

    src = tmp_path / "mlp.onnx"
    ir.save(ir.load(onnx_fixtures / "mlp.onnx"), src, external_data="mlp.onnx.data", size_threshold_bytes=0)
    model = ir.load(src)
    external = [v.const_value for v in model.graph.initializers.values() if isinstance(v.const_value, ir.ExternalTensor)]
    before = {t.name: np.array(t.numpy()) for t in external}
    savedmodel.save(model, tmp_path / "out")
    variables = [t for t in external if t.size > savedmodel.VARIABLE_MIN_SIZE]  # small ones are graph constants
    assert variables and all(t.raw is None for t in variables)  # unmapped
    for t in external:
        np.testing.assert_array_equal(t.numpy(), before[t.name])
    feeds = _feeds(model, 3, seed=0)
    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feeds)
    run, _ = _load_signature(tmp_path / "out")
    np.testing.assert_allclose(run(feeds), expected[0], rtol=1e-5, atol=1e-5)
