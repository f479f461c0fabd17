"""Kernels of the ``ai.onnx.ml`` domain (what scikit-learn models exported by skl2onnx use), part one.

Feature transforms (Binarizer, Scaler, Normalizer, Imputer, ArrayFeatureExtractor,
FeatureVectorizer), encoders (LabelEncoder, OneHotEncoder, CategoryMapper) and
linear models (LinearRegressor, LinearClassifier). Tree ensembles are in
``kernels.tf.ml_trees``; both share :func:`apply_post_transform` and :func:`class_labels`.

Versions are the model's import of ``ai.onnx.ml``. Look-ups of a key table
compare every element with every key (``x[..., None] == keys``): no hash-table
resource, so the kernels trace into a SavedModel and convert to TFLite.
Following onnx's reference and onnxruntime, classifiers compute in float32
(float64 inputs stay float64) and return float32 scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import static

ML = "ai.onnx.ml::"


def as_array(value: Any) -> np.ndarray | None:
    """An attribute (a list, or a tensor attribute arriving as a constant tensor) as numpy; None if absent."""
    if value is None:
        return None
    array = static(value)
    if array is None:
        raise ValueError("an ai.onnx.ml attribute must be a constant")
    if array.dtype == object:  # string tensor attributes hold bytes
        array = np.array([v.decode() if isinstance(v, bytes) else v for v in array.reshape(-1)], object).reshape(array.shape)
    return array


def _float_input(x: tf.Tensor) -> tf.Tensor:
    """Classifiers and regressors compute in float32 unless the input is float64."""
    return x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)


# --- post transforms shared by the classifiers and regressors ---------------------------------------------------

def _softmax_zero(scores: tf.Tensor) -> tf.Tensor:
    """Softmax over the last axis where (near-)zero scores stay zero; a row of zeros becomes 0.5 everywhere."""
    top = tf.reduce_max(scores, -1, keepdims=True)
    nonzero = tf.abs(scores) > 1e-7
    exp = tf.where(nonzero, tf.exp(scores - top), scores * tf.exp(-top))
    total = tf.reduce_sum(exp, -1, keepdims=True)
    return tf.where(total == 0, tf.constant(0.5, scores.dtype), exp / tf.where(total == 0, tf.ones_like(total), total))


def _probit(scores: tf.Tensor) -> tf.Tensor:
    """sqrt(2) * erfinv(2p - 1) with Winitzki's approximation of erfinv (a = 0.147), as onnxruntime computes it."""
    x = 2 * scores - 1
    sign = tf.where(x < 0, -tf.ones_like(x), tf.ones_like(x))
    log = tf.math.log((1 - x) * (1 + x))
    a = 2 / (math.pi * 0.147) + 0.5 * log
    inner = -a + tf.sqrt(a * a - log / 0.147)
    return 1.41421356 * sign * tf.where(tf.math.is_inf(log), tf.zeros_like(x), tf.sqrt(inner))


_POST_TRANSFORMS = {
    "NONE": lambda s: s,
    "LOGISTIC": tf.sigmoid,
    "SOFTMAX": lambda s: tf.nn.softmax(s, axis=-1),
    "SOFTMAX_ZERO": _softmax_zero,
    "PROBIT": _probit,
}


def apply_post_transform(scores: tf.Tensor, name: str | None) -> tf.Tensor:
    """Apply an ONNX-ML post transform (``NONE``, ``LOGISTIC``, ``SOFTMAX``, ``SOFTMAX_ZERO``, ``PROBIT``)."""
    name = name or "NONE"
    if name not in _POST_TRANSFORMS:
        raise ValueError(f"unknown post_transform {name!r}")
    return _POST_TRANSFORMS[name](scores)


def class_labels(index: tf.Tensor, ints: Any = None, strings: Any = None) -> tf.Tensor:
    """The class labels at ``index`` (int64 labels, or strings when the model names classes by string)."""
    if strings is not None and len(strings):
        return tf.gather(tf.constant(list(strings), tf.string), index)
    if ints is None or not len(ints):
        return tf.cast(index, tf.int64)
    return tf.gather(tf.constant(np.asarray(ints, np.int64)), index)


# --- feature transforms ------------------------------------------------------------------------------------------

@TF.register(ML + "Binarizer", since=1)
def binarizer(x, *, threshold: float = 0.0):
    return tf.cast(x > tf.cast(threshold, x.dtype), x.dtype)


@TF.register(ML + "Scaler", since=1)
def scaler(x, *, offset=None, scale=None):
    """(x - offset) * scale, one value per feature (the last axis) or one for all; computes in float32."""
    y = _float_input(x)
    offset = tf.constant(np.asarray(offset if offset is not None else [0.0], np.float32), y.dtype)
    scale = tf.constant(np.asarray(scale if scale is not None else [1.0], np.float32), y.dtype)
    return tf.cast((y - offset) * scale, tf.float32)


@TF.register(ML + "Normalizer", since=1)
def normalizer(x, *, norm: str = "MAX"):
    """Each row divided by its max-abs, L1 or L2 norm (at least 1e-30)."""
    y = _float_input(x)
    if y.shape.rank == 1:
        y = y[tf.newaxis]
    if norm == "MAX":
        div = tf.reduce_max(tf.abs(y), -1, keepdims=True)
    elif norm == "L1":
        div = tf.reduce_sum(tf.abs(y), -1, keepdims=True)
    elif norm == "L2":
        div = tf.sqrt(tf.reduce_sum(tf.square(y), -1, keepdims=True))
    else:
        raise ValueError(f"unknown norm {norm!r}")
    return tf.cast(y / tf.maximum(div, tf.constant(1e-30, y.dtype)), tf.float32)


@TF.register(ML + "Imputer", since=1)
def imputer(x, *, imputed_value_floats=None, imputed_value_int64s=None, replaced_value_float: float = 0.0,
            replaced_value_int64: int = 0):
    """Replace the missing marker (NaN or a given value) by a value per feature (the last axis) or one for all."""
    if imputed_value_floats is not None and len(imputed_value_floats):
        values, marker = np.asarray(imputed_value_floats, np.float32), replaced_value_float
    elif imputed_value_int64s is not None and len(imputed_value_int64s):
        values, marker = np.asarray(imputed_value_int64s, np.int64), replaced_value_int64
    else:
        raise ValueError("Imputer needs imputed_value_floats or imputed_value_int64s")
    fill = tf.broadcast_to(tf.cast(values, x.dtype), tf.shape(x)) if len(values) > 1 else tf.cast(values[0], x.dtype)
    missing = tf.math.is_nan(x) if x.dtype.is_floating and np.isnan(marker) else tf.equal(x, tf.cast(marker, x.dtype))
    return tf.where(missing, fill, x)


@TF.register(ML + "ArrayFeatureExtractor", since=1)
def array_feature_extractor(x, indices):
    """The last axis of ``x`` at ``indices`` (flattened); a 1-D ``x`` gives one row."""
    picked = tf.gather(x, tf.reshape(tf.cast(indices, tf.int64), [-1]), axis=-1)
    return picked[tf.newaxis] if x.shape.rank == 1 else picked


@TF.register(ML + "FeatureVectorizer", since=1)
def feature_vectorizer(inputs, *, inputdimensions=None):
    """Concatenate the inputs' columns, each cut or zero-padded to its ``inputdimensions`` width, as float32."""
    columns = []
    for x, width in zip(inputs, inputdimensions or [], strict=True):
        x = tf.cast(x if x.shape.rank != 1 else x[:, tf.newaxis], tf.float32)
        x = x[:, :width]
        columns.append(tf.pad(x, [[0, 0], [0, width - tf.shape(x)[1]]]))
    return tf.concat(columns, 1)


# --- encoders ----------------------------------------------------------------------------------------------------

def lookup(x: tf.Tensor, keys: np.ndarray, values: np.ndarray, default: Any) -> tf.Tensor:
    """Map each element of ``x`` that equals ``keys[i]`` to ``values[i]``, every other element to ``default``."""
    dtype = tf.string if values.dtype.kind in "OSU" else tf.as_dtype(values.dtype)
    key_dtype = tf.string if keys.dtype.kind in "OSU" else x.dtype
    hits = tf.equal(x[..., tf.newaxis], tf.constant(keys.tolist(), key_dtype))
    found = tf.reduce_any(hits, -1)
    picked = tf.gather(tf.constant(values.tolist(), dtype), tf.argmax(tf.cast(hits, tf.int32), -1))
    return tf.where(found, picked, tf.constant(default, dtype))


@TF.register(ML + "LabelEncoder", since=1)
def label_encoder_1(x, *, classes_strings=None, default_int64: int = -1, default_string: str = "_Unused"):
    """Opset 1: strings to their index in ``classes_strings``, or int64 indices back to strings."""
    classes = np.asarray(list(classes_strings or []), object)
    index = np.arange(len(classes), dtype=np.int64)
    if x.dtype == tf.string:
        return lookup(x, classes, index, default_int64)
    return lookup(x, index, classes, default_string)


def _encoder_table(keys_floats, keys_int64s, keys_strings, keys_tensor, values_floats, values_int64s, values_strings,
                   values_tensor, default_float, default_int64, default_string, default_tensor):
    """The keys, values and default of a LabelEncoder (opsets 2-4), whichever attributes spell them."""
    keys = next(a for a in (as_array(keys_tensor), _list(keys_floats, np.float32), _list(keys_int64s, np.int64),
                            _list(keys_strings, object), np.zeros(0, np.float32)) if a is not None)
    if values_tensor is not None:
        values = as_array(values_tensor)
        default = as_array(default_tensor)
        if default is None:
            default = {"O": "_Unused", "U": "_Unused", "f": -0.0}.get(values.dtype.kind, -1)
        else:
            default = default.reshape(-1)[0]
        return keys, values, default
    for given, dtype, default in ((values_floats, np.float32, default_float), (values_int64s, np.int64, default_int64),
                                  (values_strings, object, default_string)):
        if given is not None:
            return keys, _list(given, dtype), default
    raise ValueError("LabelEncoder has no values")


def _list(values: Any, dtype: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(list(values), dtype)


@TF.register(ML + "LabelEncoder", since=2)
def label_encoder(x, *, keys_floats=None, keys_int64s=None, keys_strings=None, keys_tensor=None, values_floats=None,
                  values_int64s=None, values_strings=None, values_tensor=None, default_float: float = -0.0,
                  default_int64: int = -1, default_string: str = "_Unused", default_tensor=None):
    """Map keys to values (opsets 2-4; opset 4 adds the tensor attributes and double keys/values)."""
    keys, values, default = _encoder_table(keys_floats, keys_int64s, keys_strings, keys_tensor, values_floats,
                                           values_int64s, values_strings, values_tensor, default_float, default_int64,
                                           default_string, default_tensor)
    if keys.dtype.kind == "f" and x.dtype.is_floating:
        keys = keys.astype(x.dtype.as_numpy_dtype)
    return lookup(x, keys, values, default)


@TF.register(ML + "OneHotEncoder", since=1)
def one_hot_encoder(x, *, cats_int64s=None, cats_strings=None, zeros: int = 1):
    """A float32 one-hot vector per element over the categories (a new last axis).

    With ``zeros=0`` an element in no category is an error: it raises at run time.
    """
    if cats_strings is not None and len(cats_strings):
        cats = tf.constant(list(cats_strings), tf.string)
    else:
        cats = tf.constant(np.asarray(list(cats_int64s or []), np.int64))
        x = tf.cast(x, tf.int64)
    hot = tf.cast(tf.equal(x[..., tf.newaxis], cats), tf.float32)
    if not zeros:
        found = tf.reduce_all(tf.reduce_any(hot > 0, -1))
        with tf.control_dependencies([tf.debugging.assert_equal(found, True, "OneHotEncoder: a value in no category")]):
            hot = tf.identity(hot)
    return hot


@TF.register(ML + "CategoryMapper", since=1)
def category_mapper(x, *, cats_int64s=None, cats_strings=None, default_int64: int = -1,
                    default_string: str = "_Unused"):
    """Strings to int64 through the pairs (cats_strings[i], cats_int64s[i]), or int64 to strings."""
    ints = np.asarray(list(cats_int64s or []), np.int64)
    strings = np.asarray(list(cats_strings or []), object)
    if x.dtype == tf.string:
        return lookup(x, strings, ints, default_int64)
    return lookup(tf.cast(x, tf.int64), ints, strings, default_string)


# --- linear models -----------------------------------------------------------------------------------------------

@TF.register(ML + "LinearRegressor", since=1)
def linear_regressor(x, *, coefficients=None, intercepts=None, targets: int = 1, post_transform: str = "NONE"):
    """x @ coefficients.reshape(targets, -1).T + intercepts, as float32."""
    y = _float_input(x)
    weights = np.asarray(coefficients, np.float32).reshape(targets, -1).T
    scores = tf.matmul(y, tf.constant(weights, y.dtype))
    if intercepts is not None and len(intercepts):
        scores += tf.constant(np.asarray(intercepts, np.float32), y.dtype)
    return apply_post_transform(tf.cast(scores, tf.float32), post_transform)


@TF.register(ML + "LinearClassifier", since=1)
def linear_classifier(x, *, coefficients=None, intercepts=None, classlabels_ints=None, classlabels_strings=None,
                      multi_class: int = 0, post_transform: str = "NONE"):
    """Scores x @ W.T + b, post-transformed; the label is the argmax's class.

    One row of coefficients with two classes is a binary model: the scores are
    [-s, s]. One class scores with a threshold (0 without a post transform, else 0.5).
    """
    del multi_class  # onnx's reference and onnxruntime ignore it
    y = _float_input(x)
    weights = np.asarray(coefficients, np.float32).reshape(-1, y.shape[-1]).T
    scores = tf.matmul(y, tf.constant(weights, y.dtype))
    if intercepts is not None and len(intercepts):
        scores += tf.constant(np.asarray(intercepts, np.float32), y.dtype)
    n_classes = max(len(classlabels_ints or []), len(classlabels_strings or []))
    if weights.shape[1] == 1 and n_classes == 2:
        scores = tf.concat([-scores, scores], -1)
    scores = apply_post_transform(tf.cast(scores, tf.float32), post_transform)
    if weights.shape[1] > 1 or n_classes == 2:
        return class_labels(tf.argmax(scores, -1), classlabels_ints, classlabels_strings), scores
    hit = scores[:, 0] >= (0.0 if (post_transform or "NONE") == "NONE" else 0.5)
    if classlabels_strings:
        return tf.where(hit, tf.constant(classlabels_strings[0]), tf.constant("")), scores
    first = classlabels_ints[0] if classlabels_ints else 1
    return tf.where(hit, tf.constant(first, tf.int64), tf.constant(0, tf.int64)), scores
