"""Classical machine-learning ops of the ``ai.onnx.ml`` domain (what skl2onnx emits).

Registered under ``"ai.onnx.ml::<Op>"`` with the domain version they apply from.
This module holds the transformers (Binarizer, Scaler, LabelEncoder, ...), the
linear models and the helpers the others share; tree ensembles are in
:mod:`kernels.torch.ml_trees`, SVMs in :mod:`kernels.torch.ml_svm`.

Strings have no torch tensors: class labels, keys or categories given as
strings raise with that reason; ``CategoryMapper`` and ``ZipMap`` (a sequence of
maps, which onnx_ir cannot even load) have no kernel.
Numerics follow onnxruntime: scores are float32, PROBIT uses its ``erfinv``
approximation, SOFTMAX_ZERO leaves zero scores out, MIN/MAX tree aggregates give
0 to a target no tree reaches. Where onnxruntime and the spec part, the spec
wins: Normalizer MAX divides by the largest magnitude (as onnx.reference and
scikit-learn), and NaN LabelEncoder keys match NaN inputs.
"""

import math

import torch
from torch import Tensor

from kernels.torch import TORCH

_ML = "ai.onnx.ml::"


# --- shared helpers -----------------------------------------------------------------


def _probit(p: Tensor) -> Tensor:
    """sqrt(2) * erfinv(2p - 1), with the approximation onnxruntime uses (Winitzki, a = 0.147)."""
    x = 2.0 * p - 1.0
    sign = torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))
    y = (1.0 - x) * (1.0 + x)
    log = torch.log(y)
    v = 2.0 / (math.pi * 0.147) + 0.5 * log
    root = torch.sqrt(-v + torch.sqrt(v * v - log / 0.147))
    return torch.where(y == 0, torch.zeros_like(x), 1.41421356 * sign * root)


def _softmax_zero(s: Tensor) -> Tensor:
    """Softmax over the last axis in which (near-)zero scores stay zero; all-zero rows become 0.5."""
    top = s.max(-1, keepdim=True).values
    e = torch.where(s.abs() > 1e-7, torch.exp(s - top), s * torch.exp(-top))
    total = e.sum(-1, keepdim=True)
    return torch.where(total == 0, torch.full_like(e, 0.5), e / total)


def _post_transform(s: Tensor, transform: str) -> Tensor:
    if transform == "NONE":
        return s
    if transform == "LOGISTIC":
        return torch.sigmoid(s)
    if transform == "SOFTMAX":
        return torch.softmax(s, -1)
    if transform == "SOFTMAX_ZERO":
        return _softmax_zero(s)
    if transform == "PROBIT":
        return _probit(s)
    raise RuntimeError("unknown post_transform " + transform)


def _transform_name(code: int) -> str:
    """TreeEnsemble-5's integer post_transform as the older ops' string."""
    if code == 0:
        return "NONE"
    if code == 1:
        return "SOFTMAX"
    if code == 2:
        return "LOGISTIC"
    if code == 3:
        return "SOFTMAX_ZERO"
    return "PROBIT"


def _rows(x: Tensor) -> Tensor:
    """Features as [N, F] (a 1-D input is one sample)."""
    return x.reshape(1, -1) if x.dim() == 1 else x.reshape(x.shape[0], -1)


def _floats(values: list[float] | None, like: Tensor) -> Tensor:
    data: list[float] = [] if values is None else values
    return torch.tensor(data, dtype=torch.float32, device=like.device)


def _no_strings(op: str, strings: list[str] | None) -> None:
    if strings is not None:
        raise RuntimeError(op + ": string labels or keys cannot be torch tensors (torch has no string tensors)")


# --- simple transformers --------------------------------------------------------------


@TORCH.register(_ML + "ArrayFeatureExtractor", since=1)
def array_feature_extractor(x: Tensor, y: Tensor) -> Tensor:
    out = torch.index_select(x, x.dim() - 1, y.reshape(-1).to(torch.int64))
    return out.reshape(1, -1) if x.dim() == 1 else out


@TORCH.register(_ML + "Binarizer", since=1)
def binarizer(x: Tensor, threshold: float = 0.0) -> Tensor:
    return (x > threshold).to(x.dtype)


@TORCH.register(_ML + "Scaler", since=1)
def scaler(x: Tensor, offset: list[float] | None = None, scale: list[float] | None = None) -> Tensor:
    xf = x.to(torch.float32)
    if offset is not None:
        xf = xf - _floats(offset, x)
    return xf * _floats(scale, x) if scale is not None else xf


@TORCH.register(_ML + "Normalizer", since=1)
def normalizer(x: Tensor, norm: str = "MAX") -> Tensor:
    xf = _rows(x).to(torch.float32)
    if norm == "MAX":
        div = xf.abs().amax(1, keepdim=True)
    elif norm == "L1":
        div = xf.abs().sum(1, keepdim=True)
    elif norm == "L2":
        div = xf.square().sum(1, keepdim=True).sqrt()
    else:
        raise RuntimeError("Normalizer: unknown norm " + norm)
    return (xf / div.clamp_min(1e-30)).reshape(x.shape)


@TORCH.register(_ML + "Imputer", since=1)
def imputer(
    x: Tensor,
    imputed_value_floats: list[float] | None = None,
    imputed_value_int64s: list[int] | None = None,
    replaced_value_float: float = 0.0,
    replaced_value_int64: int = 0,
) -> Tensor:
    if imputed_value_floats is not None and len(imputed_value_floats) > 0:
        values = torch.tensor(imputed_value_floats, dtype=x.dtype, device=x.device)
        missing = torch.isnan(x) if math.isnan(replaced_value_float) else x == replaced_value_float
    elif imputed_value_int64s is not None and len(imputed_value_int64s) > 0:
        values = torch.tensor(imputed_value_int64s, dtype=x.dtype, device=x.device)
        missing = x == replaced_value_int64
    else:
        raise RuntimeError("Imputer: no imputed values")
    return torch.where(missing, values.expand(x.shape[-1]) if values.numel() == 1 else values, x)


@TORCH.register(_ML + "OneHotEncoder", since=1)
def one_hot_encoder(
    x: Tensor, cats_int64s: list[int] | None = None, cats_strings: list[str] | None = None, zeros: int = 1
) -> Tensor:
    _no_strings("OneHotEncoder", cats_strings)
    if cats_int64s is None:
        raise RuntimeError("OneHotEncoder: no categories")
    cats = torch.tensor(cats_int64s, dtype=torch.int64, device=x.device)
    # Float inputs match a category only when integral (onnxruntime compares the int64 cast).
    integral = x == torch.round(x) if x.is_floating_point() else torch.ones_like(x, dtype=torch.bool)
    hot = (x.to(torch.int64).unsqueeze(-1) == cats) & integral.unsqueeze(-1)
    if zeros == 0 and not bool(hot.any(-1).all()):
        raise RuntimeError("OneHotEncoder: a value is in no category and zeros=0")
    return hot.to(torch.float32)


@TORCH.register(_ML + "FeatureVectorizer", since=1)
def feature_vectorizer(inputs: list[Tensor], inputdimensions: list[int] | None = None) -> Tensor:
    dims: list[int] = [] if inputdimensions is None else inputdimensions
    parts: list[Tensor] = []
    for i in range(len(inputs)):
        part = _rows(inputs[i]).to(torch.float32)
        width = dims[i] if i < len(dims) else part.shape[1]
        if part.shape[1] >= width:
            parts.append(part[:, :width])
        else:
            parts.append(torch.nn.functional.pad(part, [0, width - part.shape[1]]))
    return torch.cat(parts, 1)


@TORCH.register(_ML + "LabelEncoder", since=2)
@TORCH.register(_ML + "LabelEncoder", since=4)
def label_encoder(
    x: Tensor,
    default_float: float = -0.0,
    default_int64: int = -1,
    default_string: str = "_Unused",
    default_tensor: Tensor | None = None,
    keys_floats: list[float] | None = None,
    keys_int64s: list[int] | None = None,
    keys_strings: list[str] | None = None,
    keys_tensor: Tensor | None = None,
    values_floats: list[float] | None = None,
    values_int64s: list[int] | None = None,
    values_strings: list[str] | None = None,
    values_tensor: Tensor | None = None,
) -> Tensor:
    _no_strings("LabelEncoder", keys_strings)
    _no_strings("LabelEncoder", values_strings)
    if keys_tensor is not None:
        keys = keys_tensor.to(x.device)
    elif keys_int64s is not None:
        keys = torch.tensor(keys_int64s, dtype=torch.int64, device=x.device)
    else:
        keys = _floats(keys_floats, x)
    if values_tensor is not None:
        values = values_tensor.to(x.device)
    elif values_int64s is not None:
        values = torch.tensor(values_int64s, dtype=torch.int64, device=x.device)
    else:
        values = _floats(values_floats, x)
    if default_tensor is not None:
        default = default_tensor.reshape(-1)[0].to(values.dtype)
    elif values.is_floating_point():
        default = torch.tensor(default_float, dtype=values.dtype, device=x.device)
    else:
        default = torch.tensor(default_int64, dtype=values.dtype, device=x.device)
    keys = keys.to(x.dtype)
    hit = x.unsqueeze(-1) == keys  # [..., K]; NaN keys match NaN inputs (the spec)
    if x.is_floating_point():
        hit = hit | (torch.isnan(x).unsqueeze(-1) & torch.isnan(keys))
    found = hit.any(-1)
    last = keys.shape[0] - 1 - hit.flip(-1).to(torch.int64).argmax(-1)  # a repeated key: the last wins
    picked = values.index_select(0, last.reshape(-1)).reshape(last.shape)
    return torch.where(found, picked, default.expand_as(picked))


# --- linear models ------------------------------------------------------------------


@TORCH.register(_ML + "LinearRegressor", since=1)
def linear_regressor(
    x: Tensor,
    coefficients: list[float] | None = None,
    intercepts: list[float] | None = None,
    post_transform: str = "NONE",
    targets: int = 1,
) -> Tensor:
    xf = _rows(x).to(torch.float32)
    scores = xf @ _floats(coefficients, x).reshape(targets, -1).T
    if intercepts is not None:
        scores = scores + _floats(intercepts, x)
    return _post_transform(scores, post_transform)


@TORCH.register(_ML + "LinearClassifier", since=1)
def linear_classifier(
    x: Tensor,
    classlabels_ints: list[int] | None = None,
    classlabels_strings: list[str] | None = None,
    coefficients: list[float] | None = None,
    intercepts: list[float] | None = None,
    multi_class: int = 0,
    post_transform: str = "NONE",
) -> tuple[Tensor, Tensor]:
    _no_strings("LinearClassifier", classlabels_strings)
    xf = _rows(x).to(torch.float32)
    scores = xf @ _floats(coefficients, x).reshape(-1, xf.shape[1]).T
    if intercepts is not None:
        scores = scores + _floats(intercepts, x)
    labels: list[int] = [] if classlabels_ints is None else classlabels_ints
    if scores.shape[1] == 1 and len(labels) == 2:  # one score for two classes: [-s, s]
        scores = torch.cat([-scores, scores], 1)
    scores = _post_transform(scores, post_transform)
    if scores.shape[1] > 1:
        index = scores.argmax(1)
        label = torch.tensor(labels, dtype=torch.int64, device=x.device)[index] if len(labels) > 0 else index
        return label, scores
    positive = scores[:, 0] >= (0.0 if post_transform == "NONE" else 0.5)
    first = labels[0] if len(labels) > 0 else 1
    return torch.where(positive, first, 0).to(torch.int64), scores
