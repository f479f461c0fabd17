"""The ``ai.onnx.ml`` torch kernels on real scikit-learn models exported by skl2onnx.

Each model is fitted on small random data, exported with ``zipmap=False`` (plain
label and probability tensors), and run three ways: scikit-learn's own
``predict`` / ``predict_proba`` / ``transform`` (the outside truth), onnxruntime
on the exported file, and crossgraph's executor on the torch kernels. A subset
goes through the TorchScript back end (``converter.convert`` with its parity
check, then ``torch.jit.load`` here). The ONNX conformance cases of the domain
run in test_torch_conformance.py; its LabelEncoder cases all map strings, which
torch cannot hold, and stay failing there (as CategoryMapper stays missing).
"""

from __future__ import annotations

import numpy as np
import pytest

import ir

torch = pytest.importorskip("torch")
skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn import ensemble, linear_model, pipeline, preprocessing, svm, tree  # noqa: E402
from sklearn.base import is_classifier  # noqa: E402

from kernels.executor import run  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 5)).astype(np.float32)
Y_BINARY = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
Y_MULTI = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.3) + 2 * (X[:, 2] > 1.0)  # labels 0..4
Y_REAL = (X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + np.sin(X[:, 0])).astype(np.float32)


def _export(model) -> object:
    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    return skl2onnx.to_onnx(model, X[:1], options=options)


def _onnxruntime(proto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def _executor(proto, x: np.ndarray) -> list[np.ndarray]:
    model = ir.from_proto(proto)
    result = run(model, {model.graph.inputs[0].name: x})
    return [result[v.name] for v in model.graph.outputs]


CLASSIFIERS = {
    "decision_tree": lambda: tree.DecisionTreeClassifier(max_depth=6, random_state=0),
    "random_forest": lambda: ensemble.RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0),
    "gradient_boosting": lambda: ensemble.GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
    "logistic_regression": lambda: linear_model.LogisticRegression(max_iter=500),
    "svc": lambda: svm.SVC(),
    "svc_probability": lambda: svm.SVC(probability=True, random_state=0),
    "svc_sigmoid_kernel": lambda: svm.SVC(kernel="sigmoid"),
}
REGRESSORS = {
    "decision_tree": lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0),
    "random_forest": lambda: ensemble.RandomForestRegressor(n_estimators=20, max_depth=8, random_state=0),
    "gradient_boosting": lambda: ensemble.GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0),
    "linear_regression": lambda: linear_model.LinearRegression(),
    "scaled_linear": lambda: pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.Ridge()),
    "svr_rbf": lambda: svm.SVR(),
    "svr_linear": lambda: svm.SVR(kernel="linear"),
    "svr_poly": lambda: svm.SVR(kernel="poly"),
    "nu_svr": lambda: svm.NuSVR(),
}
TRANSFORMERS = {
    "standard_scaler": lambda: preprocessing.StandardScaler(),
    "min_max_scaler": lambda: preprocessing.MinMaxScaler(),
    "normalizer_l1": lambda: preprocessing.Normalizer(norm="l1"),
    "normalizer_l2": lambda: preprocessing.Normalizer(norm="l2"),
    "normalizer_max": lambda: preprocessing.Normalizer(norm="max"),
}


@pytest.mark.parametrize("labels", ["binary", "multiclass"])
@pytest.mark.parametrize("kind", sorted(CLASSIFIERS))
def test_classifier_matches_sklearn_and_onnxruntime(kind: str, labels: str) -> None:
    y = Y_BINARY if labels == "binary" else Y_MULTI
    model = CLASSIFIERS[kind]().fit(X, y)
    proto = _export(model)
    label, proba = _executor(proto, X)
    ort_label, ort_proba = _onnxruntime(proto, X)
    assert label.dtype == np.int64 and proba.dtype == np.float32
    np.testing.assert_allclose(proba, ort_proba, rtol=1e-5, atol=1e-5)
    if hasattr(model, "predict_proba"):  # an SVC without probability outputs decision values
        np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(label, ort_label)
    np.testing.assert_array_equal(label, model.predict(X))


@pytest.mark.parametrize("kind", sorted(REGRESSORS))
def test_regressor_matches_sklearn_and_onnxruntime(kind: str) -> None:
    model = REGRESSORS[kind]().fit(X, Y_REAL)
    proto = _export(model)
    (got,) = _executor(proto, X)
    (expected,) = _onnxruntime(proto, X)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)  # onnxruntime's SVMs sum in float32
    np.testing.assert_allclose(got.reshape(-1), model.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", sorted(TRANSFORMERS))
def test_transformer_matches_sklearn_and_onnxruntime(kind: str) -> None:
    model = TRANSFORMERS[kind]().fit(X)
    proto = _export(model)
    (got,) = _executor(proto, X)
    if kind == "normalizer_max":
        # onnxruntime divides by the signed row maximum; onnx.reference and scikit-learn
        # by the largest magnitude, which the kernel follows.
        from onnx.reference import ReferenceEvaluator

        (expected,) = ReferenceEvaluator(proto).run(None, {"X": X})
    else:
        (expected,) = _onnxruntime(proto, X)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, model.transform(X), rtol=1e-5, atol=1e-6)


def test_one_hot_encoder_on_integers_matches_sklearn_and_onnxruntime() -> None:
    codes = RNG.integers(0, 4, size=(50, 3)).astype(np.int64)
    model = preprocessing.OneHotEncoder(sparse_output=False).fit(codes)
    proto = skl2onnx.to_onnx(model, codes[:1])
    (got,) = _executor(proto, codes)
    np.testing.assert_array_equal(got, _onnxruntime(proto, codes)[0])
    np.testing.assert_array_equal(got, model.transform(codes))


def test_multi_target_forest_regressor() -> None:
    targets = np.stack([Y_REAL, X[:, 1] * 2], 1)
    model = ensemble.RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(X, targets)
    (got,) = _executor(_export(model), X)
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-4, atol=1e-4)


def test_forest_of_100_trees_on_1000_samples_runs() -> None:
    """The vectorized descent handles a full-size forest (all trees and samples at once)."""
    x = RNG.normal(size=(1000, 5)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = ensemble.RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
    proto = _export(model)
    label, proba = _executor(proto, x)
    assert proba.shape == (1000, 2)
    np.testing.assert_allclose(proba, model.predict_proba(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(label, model.predict(x))
    # Through TorchScript: the forest's node lists are module attributes, not source literals.
    from converter.backends import torchscript

    source = torchscript.generate_source(ir.from_proto(proto))
    assert "nodes_treeids=self.a_nodes_treeids" in source and len(source) < 20_000
    ts_label, ts_proba = torchscript.script(ir.from_proto(proto))(torch.from_numpy(x))
    np.testing.assert_array_equal(ts_label.numpy(), label)
    np.testing.assert_allclose(ts_proba.numpy(), proba, rtol=1e-6, atol=1e-7)


def test_string_class_labels_are_refused_with_the_reason(tmp_path) -> None:
    import converter
    from converter.errors import UnsupportedOpsError

    model = tree.DecisionTreeClassifier(max_depth=3).fit(X, np.where(Y_BINARY == 1, "yes", "no"))
    proto = _export(model)
    with pytest.raises(RuntimeError, match="string labels"):
        _executor(proto, X)
    source = tmp_path / "model.onnx"
    source.write_bytes(proto.SerializeToString())
    with pytest.raises(UnsupportedOpsError, match="TreeEnsembleClassifier.*strings"):
        converter.convert(source, tmp_path / "model.pt")


# --- through the TorchScript back end ------------------------------------------------

TORCHSCRIPT_MODELS = {
    "random_forest_classifier": lambda: ensemble.RandomForestClassifier(n_estimators=10, max_depth=6,
                                                                        random_state=0).fit(X, Y_MULTI),
    "gradient_boosting_binary": lambda: ensemble.GradientBoostingClassifier(n_estimators=10, random_state=0)
    .fit(X, Y_BINARY),
    "gradient_boosting_regressor": lambda: ensemble.GradientBoostingRegressor(n_estimators=10, random_state=0)
    .fit(X, Y_REAL),
    "logistic_pipeline": lambda: pipeline.make_pipeline(preprocessing.MinMaxScaler(),
                                                        linear_model.LogisticRegression(max_iter=500)).fit(X, Y_MULTI),
    "svr": lambda: svm.SVR().fit(X, Y_REAL),
    "svc_probability": lambda: svm.SVC(probability=True, random_state=0).fit(X, Y_MULTI),
    "one_class_svm": lambda: svm.OneClassSVM().fit(X),
}


@pytest.mark.parametrize("kind", sorted(TORCHSCRIPT_MODELS))
def test_torchscript_conversion_matches_onnxruntime(kind: str, tmp_path) -> None:
    import converter

    proto = _export(TORCHSCRIPT_MODELS[kind]())
    source = tmp_path / "model.onnx"
    source.write_bytes(proto.SerializeToString())
    converter.convert(source, tmp_path / "model.pt", check=True)
    module = torch.jit.load(str(tmp_path / "model.pt"))
    got = module(torch.from_numpy(X))
    got = list(got) if isinstance(got, tuple) else [got]
    for actual, expected in zip(got, _onnxruntime(proto, X), strict=True):
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-5, atol=1e-4)


def test_zipmap_output_is_refused_with_the_export_option_to_use(tmp_path) -> None:
    import converter
    from converter.errors import UnsupportedOpsError

    model = linear_model.LogisticRegression().fit(X, Y_BINARY)
    source = tmp_path / "model.onnx"
    source.write_bytes(skl2onnx.to_onnx(model, X[:1]).SerializeToString())  # ZipMap by default
    with pytest.raises(UnsupportedOpsError, match="zipmap=False"):
        converter.convert(source, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


# --- single ops the exporters emit, built by hand, against onnxruntime ---------------


def _ml_model(node, inputs, outputs, ml_opset: int = 3):
    from onnx import helper

    graph = helper.make_graph([node], "ml", inputs, outputs)
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", ml_opset)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def _check_against_onnxruntime(proto, feed: dict, *, reference: bool = False) -> None:
    """Executor vs onnxruntime (or, with ``reference``, onnx.reference where onnxruntime lacks the op)."""
    model = ir.from_proto(proto)
    got = run(model, feed)
    if reference:
        from onnx.reference import ReferenceEvaluator

        results = ReferenceEvaluator(proto).run(None, feed)
    else:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        results = session.run(None, feed)
    for value, expected in zip(model.graph.outputs, results, strict=True):
        assert got[value.name].dtype == expected.dtype, value.name
        np.testing.assert_allclose(got[value.name], expected, rtol=1e-6, atol=1e-6, err_msg=value.name)


def test_label_encoder_numeric_forms_match_onnxruntime() -> None:
    from onnx import TensorProto, helper, numpy_helper

    x = np.array([[1, 7, 3], [-2, 3, 1]], np.int64)
    lists = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_int64s=[1, 3, -2],
                             values_floats=[0.5, 1.5, -2.5], default_float=9.0)
    _check_against_onnxruntime(_ml_model(lists, [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 3])],
                                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], 2), {"x": x})
    f = np.array([0.5, 3.0, 2.0, 4.0], np.float32)
    tensors = helper.make_node(
        "LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml",
        keys_tensor=numpy_helper.from_array(np.array([0.5, 2.0, np.nan, 0.5], np.float32), "keys"),
        values_tensor=numpy_helper.from_array(np.array([10, 20, 30, 40], np.int16), "values"),
        default_tensor=numpy_helper.from_array(np.array([-7], np.int16), "default"),
    )
    proto = _ml_model(tensors, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                      [helper.make_tensor_value_info("y", TensorProto.INT16, [4])], 4)
    _check_against_onnxruntime(proto, {"x": f}, reference=True)  # onnxruntime has LabelEncoder-4 for strings only
    # The spec: "Float keys with value 'NaN' match any input 'NaN' value" (onnx.reference misses them).
    nan = run(ir.from_proto(proto), {"x": np.array([np.nan, 1.0], np.float32)})["y"]
    np.testing.assert_array_equal(nan, np.array([30, -7], np.int16))


def test_imputer_binarizer_feature_vectorizer_match_onnxruntime() -> None:
    from onnx import TensorProto, helper

    x = X[:6].copy()
    x[1, 2] = x[4, 0] = np.nan
    info = helper.make_tensor_value_info
    imputer = helper.make_node("Imputer", ["x"], ["y"], domain="ai.onnx.ml",
                               imputed_value_floats=[1.0, 2.0, 3.0, 4.0, 5.0], replaced_value_float=float("nan"))
    _check_against_onnxruntime(_ml_model(imputer, [info("x", TensorProto.FLOAT, [6, 5])],
                                         [info("y", TensorProto.FLOAT, [6, 5])]), {"x": x})
    binarizer = helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.25)
    _check_against_onnxruntime(_ml_model(binarizer, [info("x", TensorProto.FLOAT, [6, 5])],
                                         [info("y", TensorProto.FLOAT, [6, 5])]), {"x": X[:6]})
    vectorizer = helper.make_node("FeatureVectorizer", ["a", "b"], ["y"], domain="ai.onnx.ml", inputdimensions=[2, 4])
    feed = {"a": X[:6, :3], "b": X[:6, :2]}  # cut to 2 columns, padded to 4
    _check_against_onnxruntime(_ml_model(vectorizer, [info("a", TensorProto.FLOAT, [6, 3]),
                                                      info("b", TensorProto.FLOAT, [6, 2])],
                                         [info("y", TensorProto.FLOAT, [6, 6])]), feed)


@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
def test_tree_ensemble_5_modes_and_aggregates_match_onnxruntime(aggregate: int) -> None:
    """Two trees using every comparison mode, NaN routing and two targets (ml opset 5)."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(
        "TreeEnsemble", ["x"], ["y"], domain="ai.onnx.ml",
        aggregate_function=aggregate, n_targets=2, tree_roots=[0, 3], post_transform=0,
        nodes_featureids=[0, 1, 2, 3, 4, 0],
        nodes_modes=numpy_helper.from_array(np.array([1, 2, 3, 4, 5, 0], np.uint8), "modes"),
        nodes_splits=numpy_helper.from_array(np.array([0.0, -0.5, 0.3, 0.0, 0.1, 1.0], np.float32), "splits"),
        nodes_truenodeids=[1, 0, 2, 4, 3, 5], nodes_trueleafs=[0, 1, 1, 0, 1, 1],
        nodes_falsenodeids=[2, 1, 3, 5, 4, 6], nodes_falseleafs=[0, 1, 1, 0, 1, 1],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 1, 0],
        leaf_targetids=[0, 1, 0, 1, 1, 0, 1],
        leaf_weights=numpy_helper.from_array(np.array([1.0, 2.0, -3.0, 4.0, 5.0, 6.0, -7.0], np.float32), "w"),
    )
    x = X[:40].copy()
    x[::5, 0] = np.nan
    x[::7, 3] = 0.0  # exercises EQ
    proto = _ml_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [40, 5])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [40, 2])], 5)
    _check_against_onnxruntime(proto, {"x": x})
