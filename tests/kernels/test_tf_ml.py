"""scikit-learn models exported by skl2onnx, converted to SavedModels through crossgraph's API.

Each model is fitted on a small random problem, exported with ``zipmap=False``,
converted with ``converter.convert(..., target_format="savedmodel", check=True)``
(the API's own parity check against onnxruntime runs too), loaded with
``tf.saved_model.load`` and run by its serving signature on rows it was not
fitted on. Labels must equal sklearn's and onnxruntime's exactly; scores,
probabilities and regression targets must match onnxruntime's (float32) and
sklearn's (float64) within float32 tolerances.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("skl2onnx")

from sklearn.base import is_classifier  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, Normalizer, OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.svm import SVC, SVR  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((120, 5)).astype(np.float32)
X_TEST = RNG.standard_normal((17, 5)).astype(np.float32)
Y_REG = (X @ RNG.standard_normal(5) + 0.3 * np.sin(3 * X[:, 0])).astype(np.float32)
Y_BIN = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
Y_MULTI = np.digitize(X[:, 0] - X[:, 3], [-0.7, 0.0, 0.7]).astype(np.int64)  # 4 classes
NAMES = np.array(["ant", "bee", "cat", "dog"])


def _convert(model, x: np.ndarray, tmp_path: pathlib.Path, check: bool = True):
    """Export ``model`` with skl2onnx, convert to a SavedModel and load it: ``run(rows)`` gives
    (the signature's outputs, onnxruntime's outputs)."""
    import onnxruntime as ort
    import tensorflow as tf
    from skl2onnx import to_onnx

    from converter import api

    onnx_path = tmp_path / "m.onnx"
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if is_classifier(final) else None
    onnx_path.write_bytes(to_onnx(model, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
                          .SerializeToString())
    out = tmp_path / "saved"
    api.convert(str(onnx_path), str(out), target_format="savedmodel", check=check)
    fn = tf.saved_model.load(str(out)).signatures["serving_default"]
    manifest = json.loads((out / "assets.extra" / "crossgraph.json").read_text())
    feed = manifest["inputs"][0]["signature_name"]
    names = [e["signature_name"] for e in manifest["outputs"]]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def run(rows: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        got = fn(**{feed: tf.constant(rows)})
        return [got[n].numpy() for n in names], session.run(None, {session.get_inputs()[0].name: rows})

    return run


def _labels(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else v for v in values.reshape(-1)])


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=7, max_depth=6, random_state=0),
    lambda: GradientBoostingClassifier(n_estimators=12, max_depth=3, random_state=0),
    lambda: DecisionTreeClassifier(max_depth=8, random_state=0),
    lambda: LogisticRegression(max_iter=500),
], ids=["random_forest", "gradient_boosting", "decision_tree", "logistic"])
@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_classifier_labels_and_probabilities(make, target: str, tmp_path) -> None:
    y = Y_BIN if target == "binary" else Y_MULTI
    model = make().fit(X, y)
    (label, proba), (ort_label, ort_proba) = _convert(model, X, tmp_path)(X_TEST)
    np.testing.assert_array_equal(label, model.predict(X_TEST))
    np.testing.assert_array_equal(label, ort_label)
    np.testing.assert_allclose(proba, ort_proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba, model.predict_proba(X_TEST), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: RandomForestRegressor(n_estimators=6, max_depth=7, random_state=0),
    lambda: GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0),
    lambda: DecisionTreeRegressor(random_state=0),  # grown to purity: deeper than the unrolled walk
    LinearRegression,
    lambda: make_pipeline(StandardScaler(), MinMaxScaler(), LinearRegression()),
], ids=["random_forest", "gradient_boosting", "deep_decision_tree", "linear", "scaler_pipeline"])
def test_regressor_predictions(make, tmp_path) -> None:
    model = make().fit(X, Y_REG)
    (pred,), (ort_pred,) = _convert(model, X, tmp_path)(X_TEST)
    np.testing.assert_allclose(pred, ort_pred, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pred.reshape(-1), model.predict(X_TEST), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel", ["rbf", "poly", "linear"])
def test_support_vector_regressor(kernel: str, tmp_path) -> None:
    model = SVR(kernel=kernel, C=3.0, degree=2).fit(X, Y_REG)
    (pred,), (ort_pred,) = _convert(model, X, tmp_path)(X_TEST)
    np.testing.assert_allclose(pred, ort_pred, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pred.reshape(-1), model.predict(X_TEST), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("target", ["binary", "multiclass"])
@pytest.mark.parametrize("kernel", ["rbf", "sigmoid"])
def test_support_vector_classifier_labels_and_decision_values(kernel: str, target: str, tmp_path) -> None:
    y = Y_BIN if target == "binary" else Y_MULTI
    model = SVC(kernel=kernel, C=2.0, gamma=0.3).fit(X, y)
    (label, scores), (ort_label, ort_scores) = _convert(model, X, tmp_path)(X_TEST)
    np.testing.assert_array_equal(label, model.predict(X_TEST))
    np.testing.assert_array_equal(label, ort_label)
    np.testing.assert_allclose(scores, ort_scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("target", ["binary", "multiclass"])
@pytest.mark.parametrize("kernel", ["rbf", "poly"])
@pytest.mark.filterwarnings("ignore:.*probability:FutureWarning")
def test_support_vector_classifier_probability_estimates(kernel: str, target: str, tmp_path) -> None:
    """SVC(probability=True): Platt-scaled pairwise probabilities coupled per row (libsvm's method)."""
    y = Y_BIN if target == "binary" else Y_MULTI
    model = SVC(kernel=kernel, C=2.0, gamma=0.3, degree=2, probability=True, random_state=0).fit(X, y)
    (label, proba), (ort_label, ort_proba) = _convert(model, X, tmp_path)(X_TEST)
    np.testing.assert_array_equal(label, ort_label)
    np.testing.assert_array_equal(label, model.predict(X_TEST))
    np.testing.assert_allclose(proba, ort_proba, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(proba, model.predict_proba(X_TEST), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_string_labels_through_a_normalizer_pipeline(tmp_path) -> None:
    """Class names as strings (TensorFlow returns UTF-8 bytes), after Normalizer and StandardScaler."""
    model = make_pipeline(Normalizer(), StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0))
    model.fit(X, NAMES[Y_MULTI])
    (label, proba), (ort_label, ort_proba) = _convert(model, X, tmp_path)(X_TEST)  # parity compares the strings too
    assert _labels(label).tolist() == model.predict(X_TEST).tolist() == ort_label.tolist()
    np.testing.assert_allclose(proba, model.predict_proba(X_TEST), rtol=1e-4, atol=1e-5)


def test_one_hot_encoder_in_a_column_transformer(tmp_path) -> None:
    """Integer categories one-hot encoded (OneHotEncoder, FeatureVectorizer ops) beside scaled columns."""
    codes = RNG.integers(0, 4, (120, 2)).astype(np.float32)
    data = np.concatenate([codes, X[:, :3]], 1)
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), [0, 1]),
                              ("num", StandardScaler(), [2, 3, 4])])
    model = make_pipeline(prep, LogisticRegression(max_iter=500)).fit(data, Y_BIN)
    rows = np.concatenate([RNG.integers(0, 5, (17, 2)).astype(np.float32), X_TEST[:, :3]], 1)  # 4 is unseen
    (label, proba), (ort_label, ort_proba) = _convert(model, data, tmp_path)(rows)
    np.testing.assert_array_equal(label, model.predict(rows))
    np.testing.assert_allclose(proba, ort_proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba, model.predict_proba(rows), rtol=1e-4, atol=1e-5)


def test_dynamic_batch_sizes(tmp_path) -> None:
    """Exported from one example row, run on 1, 3 and 64 rows through the same signature."""
    model = GradientBoostingClassifier(n_estimators=8, max_depth=4, random_state=0).fit(X, Y_MULTI)
    run = _convert(model, X, tmp_path)
    for n in (1, 3, 64):
        rows = RNG.standard_normal((n, 5)).astype(np.float32)
        (label, proba), (ort_label, ort_proba) = run(rows)
        assert label.shape == (n,) and proba.shape == (n, 4)
        np.testing.assert_array_equal(label, model.predict(rows))
        np.testing.assert_allclose(proba, ort_proba, rtol=1e-5, atol=1e-6)


def test_savedmodel_back_end_refuses_zipmap_with_the_export_option_to_use() -> None:
    import ir
    from converter.backends import savedmodel
    from converter.errors import NotYetSupportedError

    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape(["batch", 2]))
    node = ir.Node("ai.onnx.ml", "ZipMap", [x], attributes=[ir.AttrInt64s("classlabels_int64s", [0, 1])])
    node.outputs[0].name = "probabilities"
    graph = ir.Graph([x], node.outputs, nodes=[node], opset_imports={"": 17, "ai.onnx.ml": 1})
    with pytest.raises(NotYetSupportedError, match=r"zipmap=False"):
        savedmodel.build(ir.Model(graph, ir_version=8))


def test_zipmap_output_is_refused_with_the_export_option_to_use(tmp_path) -> None:
    from skl2onnx import to_onnx

    from converter import api
    from converter.errors import UnsupportedOpsError

    model = LogisticRegression(max_iter=200).fit(X, Y_BIN)
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(to_onnx(model, X[:1]).SerializeToString())  # ZipMap left on
    with pytest.raises(UnsupportedOpsError, match="zipmap=False"):
        api.convert(str(onnx_path), str(tmp_path / "saved"), target_format="savedmodel", check=False)
    assert not (tmp_path / "saved").exists()


# --- single ai.onnx.ml nodes that skl2onnx rarely emits, against onnx's reference ------------------------------

def _node_model(op: str, x: np.ndarray, n_outputs: int = 1, **attrs):
    import onnx
    from onnx import helper

    elem = helper.np_dtype_to_tensor_dtype(x.dtype) if x.dtype.kind != "U" else onnx.TensorProto.STRING
    outputs = [f"y{i}" for i in range(n_outputs)]
    graph = helper.make_graph([helper.make_node(op, ["x"], outputs, domain="ai.onnx.ml", **attrs)], "g",
                              [helper.make_tensor_value_info("x", elem, list(x.shape))],
                              [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])


def _check_against_reference(proto, x: np.ndarray, expected: list | None = None) -> None:
    """The TensorFlow walk's outputs against onnx's reference (or ``expected`` where it has no implementation)."""
    import onnx.reference

    import ir
    from kernels.tf.run import run

    if expected is None:
        expected = onnx.reference.ReferenceEvaluator(proto).run(None, {"x": x})
    got = run(ir.from_proto(proto), {"x": x})
    for out, exp in zip(proto.graph.output, expected, strict=True):
        actual = np.asarray(got[out.name])
        if exp.dtype.kind in "OU":
            assert _labels(actual).tolist() == exp.reshape(-1).tolist()
        else:
            np.testing.assert_allclose(actual, exp, rtol=1e-5, atol=1e-6, err_msg=out.name)


_STUMPS = {  # two trees over features 0 and 2, three targets, with NaN going left in tree 1
    "nodes_treeids": [0, 0, 0, 1, 1, 1, 1, 1], "nodes_nodeids": [0, 1, 2, 0, 1, 2, 3, 4],
    "nodes_featureids": [0, 0, 0, 2, 0, 0, 0, 0], "nodes_values": [0.1, 0, 0, -0.3, 0.5, 0, 0, 0],
    "nodes_modes": ["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_GT", "BRANCH_LT", "LEAF", "LEAF", "LEAF"],
    "nodes_truenodeids": [1, 0, 0, 1, 2, 0, 0, 0], "nodes_falsenodeids": [2, 0, 0, 4, 3, 0, 0, 0],
    "nodes_missing_value_tracks_true": [0, 0, 0, 1, 0, 0, 0, 0],
    "target_treeids": [0, 0, 0, 1, 1, 1, 1], "target_nodeids": [1, 2, 2, 2, 3, 4, 4],
    "target_ids": [0, 1, 2, 0, 1, 0, 2], "target_weights": [1.5, -2.0, 0.25, 3.0, -1.0, 0.5, 4.0],
}
X_NAN = np.where(RNG.random((9, 3)) < 0.2, np.nan, RNG.standard_normal((9, 3))).astype(np.float32)


@pytest.mark.parametrize("how", ["SUM", "AVERAGE", "MIN", "MAX"])
@pytest.mark.parametrize("walk", ["unrolled", "while_loop"])
def test_tree_ensemble_regressor_aggregates_and_missing_values(how: str, walk: str, monkeypatch) -> None:
    from kernels.tf import ml_trees

    if walk == "while_loop":
        monkeypatch.setattr(ml_trees, "UNROLL_DEPTH", 0)
    proto = _node_model("TreeEnsembleRegressor", X_NAN, n_targets=3, aggregate_function=how,
                        base_values=[0.5, 0.0, -1.0], **_STUMPS)
    _check_against_reference(proto, X_NAN)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
def test_linear_classifier_post_transforms(post: str) -> None:
    x = RNG.standard_normal((6, 3)).astype(np.float32) * 0.3
    coefs = RNG.standard_normal(9) * 0.2  # scores in (0, 1), where PROBIT is defined
    coefs[3:6] = 0  # class b scores exactly 0: SOFTMAX_ZERO gives it weight 0 (not exp(0 - max)), PROBIT 0
    proto = _node_model("LinearClassifier", x, 2, coefficients=coefs.tolist(), intercepts=[0.45, 0.0, 0.55],
                        classlabels_strings=["a", "b", "c"], post_transform=post)
    _check_against_reference(proto, x)


@pytest.mark.parametrize(("op", "x", "attrs"), [
    ("Imputer", X_NAN, {"imputed_value_floats": [1.0, -2.0, 3.0], "replaced_value_float": float("nan")}),
    ("Imputer", np.array([[1, -1], [-1, 4]], np.int64), {"imputed_value_int64s": [7], "replaced_value_int64": -1}),
    ("Scaler", X_TEST, {"offset": [0.5, 0, 1, -1, 2], "scale": [2.0, 1, 0.5, 3, 1]}),
    ("Normalizer", X_TEST, {"norm": "L1"}),
    ("Normalizer", X_TEST, {"norm": "L2"}),
    ("Normalizer", X_TEST, {"norm": "MAX"}),
    ("OneHotEncoder", np.array([[1, 3], [2, 9]], np.int64), {"cats_int64s": [1, 2, 3]}),
    ("LabelEncoder", np.array(["b", "q", "a"]), {"keys_strings": ["a", "b"], "values_floats": [0.5, 1.5]}),
], ids=["imputer_nan", "imputer_int", "scaler", "normalizer_l1", "normalizer_l2", "normalizer_max",
        "one_hot_encoder", "label_encoder_to_float"])
def test_feature_transforms(op: str, x: np.ndarray, attrs: dict) -> None:
    _check_against_reference(_node_model(op, x, **attrs), x)


@pytest.mark.parametrize(("x", "default", "expected"), [
    (np.array(["b", "z", "a"]), {}, np.array([20, -1, 10], np.int64)),
    (np.array([20, 5, 10], np.int64), {"default_string": "?"}, np.array(["b", "?", "a"])),
], ids=["to_int", "to_string"])
def test_category_mapper(x: np.ndarray, default: dict, expected: np.ndarray) -> None:
    """onnx's reference has no CategoryMapper: the spec's mapping, written out."""
    proto = _node_model("CategoryMapper", x, cats_strings=["a", "b"], cats_int64s=[10, 20], **default)
    _check_against_reference(proto, x, [expected])


def test_feature_vectorizer_cuts_and_pads_each_input() -> None:
    import onnx
    import onnx.reference
    from onnx import helper

    import ir
    from kernels.tf.run import run

    a, b = RNG.standard_normal((3, 4)).astype(np.float32), np.arange(6, dtype=np.int64).reshape(3, 2)
    node = helper.make_node("FeatureVectorizer", ["a", "b"], ["y"], domain="ai.onnx.ml", inputdimensions=[2, 3])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [3, 4]),
                                            helper.make_tensor_value_info("b", onnx.TensorProto.INT64, [3, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
    expected = onnx.reference.ReferenceEvaluator(proto).run(None, {"a": a, "b": b})[0]
    got = np.asarray(run(ir.from_proto(proto), {"a": a, "b": b})["y"])
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, expected.astype(np.float32))
