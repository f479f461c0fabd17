"""The TensorFlow front end on the fixture files: TF's own outputs ≈ onnxruntime on the IR.

Every fixture of ``fixtures/build_tf_fixtures.py`` (Keras ``.keras`` and ``.h5``,
SavedModel, frozen GraphDef) is loaded, verified, saved to ONNX and run in
onnxruntime at two batch sizes (and two sequence lengths where the source has
one), against the source run by TensorFlow itself.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import ir  # noqa: E402
from converter.frontends import tensorflow as tf_frontend  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "models" / "tf"

#: name -> (format, input names, output names, provenance names expected among the nodes')
CASES = {
    # tf2onnx rebuilds the depthwise conv as a nameless Conv: it borrows its consumer's name (bn2)
    "cnn.keras": ("keras", ["image"], ["probs"], {"conv", "bn", "bn2", "relu6", "probs"}),
    "cnn_savedmodel": ("savedmodel", ["image"], ["output_0"], {"cnn_1/conv_1/BiasAdd"}),
    "lstm_text.h5": ("keras", ["tokens"], ["logits"], {"embed", "lstm", "logits"}),
    "gru_text.keras": ("keras", ["tokens"], ["logits"], {"embed", "gru", "logits"}),
    "transformer.keras": ("keras", ["embeddings"], ["ln2"], {"mha/query", "mha/attention_output", "ln1", "ffn_in"}),
    "transformer_savedmodel": ("savedmodel", ["embeddings"], ["output_0"], {"transformer_1/ln2_1/add_1"}),
    "control_flow_savedmodel": ("savedmodel", ["x"], ["total", "y"], {"cond", "while_loop", "while/Tanh"}),
    "multi_io.keras": ("keras", ["pixels", "extra"], ["score", "embedding"], {"flat", "concat", "hidden"}),
    "multi_io.h5": ("keras", ["pixels", "extra"], ["score", "embedding"], {"hidden", "score"}),
    "int_bool.keras": ("keras", ["ids", "mask"], ["out"], {"embed", "out"}),
    "int_bool_savedmodel": ("savedmodel", ["ids", "mask"], ["output_0"], {"int_bool_1/embed_1/GatherV2"}),
    "frozen_cnn.pb": ("graphdef", ["image"], ["probs"], {"conv/Relu", "fc/MatMul", "pool"}),
}

#: int inputs index an Embedding of at least this many rows
_VOCAB = 20


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> pathlib.Path:
    """The committed fixtures, or a fresh build of them when any is missing."""
    if all((FIXTURES / name).exists() for name in CASES):
        return FIXTURES
    from fixtures.build_tf_fixtures import build_all

    out = tmp_path_factory.mktemp("tf_fixtures")
    build_all(out)
    return out


@pytest.fixture(scope="module")
def converted(fixture_dir) -> dict[str, ir.Model]:
    """Each fixture converted once, shared by the tests of this module."""
    cache: dict[str, ir.Model] = {}

    def get(name: str) -> ir.Model:
        if name not in cache:
            cache[name] = tf_frontend.load(fixture_dir / name, format=CASES[name][0])
        return cache[name]

    return get


def random_inputs(model: ir.Model, batch: int, seq: int, seed: int) -> dict[str, np.ndarray]:
    """Random feeds for the model's inputs: ``batch`` for dim 0, ``seq`` for other symbols."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.inputs:
        shape = [d if isinstance(d, int) else (batch if i == 0 else seq) for i, d in enumerate(value.shape)]
        dtype = value.dtype.numpy()
        if dtype == np.bool_:
            feeds[value.name] = rng.random(shape) > 0.3
        elif np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.integers(0, _VOCAB, shape).astype(dtype)
        else:
            feeds[value.name] = rng.normal(0, 1, shape).astype(dtype)
    return feeds


def run_onnxruntime(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def run_tensorflow(path: pathlib.Path, fmt: str, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """The source model run by TensorFlow / Keras itself."""
    import tensorflow as tf

    if fmt == "keras":
        import keras

        model = keras.models.load_model(path, compile=False)
        args = [feeds[t.name] for t in model.inputs]
        result = model(args[0] if len(args) == 1 else args, training=False)
        return dict(zip(model.output_names, [np.asarray(r) for r in tf.nest.flatten(result)], strict=True))
    if fmt == "savedmodel":
        result = tf.saved_model.load(str(path)).signatures["serving_default"](**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in result.items()}
    graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            values = session.run([f"{o}:0" for o in outputs], {f"{k}:0": v for k, v in feeds.items()})
    return dict(zip(outputs, values, strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_matches_tensorflow_at_two_batch_sizes(name, converted, fixture_dir):
    model = converted(name)
    fmt, _, outputs, _ = CASES[name]
    for batch, seq, seed in [(2, 5, 0), (3, 9, 1)]:
        feeds = random_inputs(model, batch, seq, seed)
        expected = run_tensorflow(fixture_dir / name, fmt, feeds, outputs)
        got = run_onnxruntime(model, feeds)
        assert set(got) == set(expected)
        for key, want in expected.items():
            assert got[key].shape == want.shape, key
            np.testing.assert_allclose(got[key], want, rtol=1e-4, atol=1e-5, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", list(CASES))
def test_keeps_source_names_and_symbols(name, converted):
    model = converted(name)
    _, inputs, outputs, _ = CASES[name]
    assert [v.name for v in model.graph.inputs] == inputs
    assert sorted(v.name for v in model.graph.outputs) == sorted(outputs)
    if CASES[name][0] == "keras":  # Keras models keep their own output order
        assert [v.name for v in model.graph.outputs] == outputs
    assert ir.model_opset(model) == ir.DEFAULT_OPSET
    for value in model.graph.inputs:
        assert value.shape[0] == ir.SymbolicDim("batch")
    ir.verify(model)


def test_batch_symbol_reaches_outputs(converted):
    for name in ["cnn.keras", "cnn_savedmodel", "lstm_text.h5", "transformer.keras", "multi_io.keras", "frozen_cnn.pb"]:
        for value in converted(name).graph.outputs:
            assert value.shape[0] == ir.SymbolicDim("batch"), (name, value.name, value.shape)


def test_text_models_name_the_sequence_dim(converted):
    for name in ["lstm_text.h5", "gru_text.keras"]:
        (tokens,) = converted(name).graph.inputs
        assert list(tokens.shape) == [ir.SymbolicDim("batch"), ir.SymbolicDim("tokens_1")]


@pytest.mark.parametrize("name", list(CASES))
def test_every_node_records_its_tensorflow_name(name, converted):
    model = converted(name)
    from ir.provenance import source_framework

    nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
    assert all(source_framework(n) == "tensorflow" for n in nodes)
    names = {ir.source_name(n) for n in nodes}
    assert CASES[name][3] <= names, names
    # tf2onnx's uniquifying suffixes and call wrappers never leak into provenance
    assert not [s for s in names if "__" in s or "PartitionedCall" in s]


def test_exact_gelu_erfc_is_repaired(converted):
    model = converted("transformer.keras")
    ops = {n.op_type for n in model.graph}
    assert "Erfc" not in ops and "Erf" in ops
    erf = next(n for n in model.graph if n.op_type == "Erf")
    assert ir.source_name(erf) == "ffn_in"


def test_graphdef_outputs_can_be_named(fixture_dir):
    model = tf_frontend.load(
        fixture_dir / "frozen_cnn.pb", format="graphdef", inputs=[InputSpec("image:0", ("n", 8, 8, 3))], outputs=["conv/Relu", "probs"]
    )
    assert [v.name for v in model.graph.outputs] == ["conv/Relu", "probs"]
    assert model.graph.inputs[0].shape[0] == ir.SymbolicDim("n")
    feeds = random_inputs(model, 2, 1, 0)
    expected = run_tensorflow(fixture_dir / "frozen_cnn.pb", "graphdef", feeds, ["conv/Relu", "probs"])
    got = run_onnxruntime(model, feeds)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5)


def test_missing_signature_lists_available_ones(fixture_dir):
    from converter.errors import InputError

    with pytest.raises(InputError, match="no signature 'predict'.*available signatures: serve, serving_default"):
        tf_frontend.load(fixture_dir / "cnn_savedmodel", format="savedmodel", signature="predict")
