"""Support vector machines of the ``ai.onnx.ml`` domain: SVMRegressor and SVMClassifier.

The kernel matrix between the samples and the support vectors is evaluated at
once, in float64; classification follows libsvm's one-vs-one voting and, with
probabilities, its pairwise coupling.
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch.ml import _ML, _floats, _no_strings, _post_transform, _probit, _rows

# --- support vector machines --------------------------------------------------------


def _svm_kernel(x: Tensor, vectors: Tensor, kernel_type: str, params: list[float] | None) -> Tensor:
    """The kernel between every sample [N, F] and every support vector [V, F]: [N, V] (float64)."""
    p: list[float] = [0.0, 0.0, 0.0] if params is None else params
    gamma, coef0, degree = p[0], p[1], p[2]
    kind = kernel_type.upper()
    if kind == "RBF":
        distance = (x * x).sum(1, keepdim=True) - 2.0 * (x @ vectors.T) + (vectors * vectors).sum(1)
        return torch.exp(-gamma * distance.clamp_min(0.0))
    dot = x @ vectors.T
    if kind == "LINEAR":
        return dot
    if kind == "POLY":
        return torch.pow(gamma * dot + coef0, float(int(degree)))
    if kind == "SIGMOID":
        return torch.tanh(gamma * dot + coef0)
    raise RuntimeError("unknown SVM kernel_type " + kernel_type)


@TORCH.register(_ML + "SVMRegressor", since=1)
def svm_regressor(
    x: Tensor,
    coefficients: list[float] | None = None,
    kernel_params: list[float] | None = None,
    kernel_type: str = "LINEAR",
    n_supports: int = 0,
    one_class: int = 0,
    post_transform: str = "NONE",
    rho: list[float] | None = None,
    support_vectors: list[float] | None = None,
) -> Tensor:
    xd = _rows(x).to(torch.float64)
    coef = _floats(coefficients, x).to(torch.float64)
    bias = _floats(rho, x).to(torch.float64)[0]
    if n_supports > 0:
        vectors = _floats(support_vectors, x).to(torch.float64).reshape(n_supports, -1)
        scores = _svm_kernel(xd, vectors, kernel_type, kernel_params) @ coef + bias
    else:
        scores = xd @ coef + bias
    if one_class != 0:
        scores = torch.where(scores > 0, torch.ones_like(scores), -torch.ones_like(scores))
    return _post_transform(scores.to(torch.float32).unsqueeze(1), post_transform)


def _pairwise_probabilities(r: Tensor) -> Tensor:
    """Class probabilities [N, k] from pairwise ones [N, k, k] (libsvm's ``multiclass_probability``,
    Wu, Lin and Weng's method 2), iterated for all samples until each converges."""
    n, k = r.shape[0], r.shape[1]
    eye = torch.eye(k, dtype=torch.bool, device=r.device)
    q = torch.where(eye, (r * r).sum(1).diag_embed(), -r * r.transpose(1, 2))  # Q[t,j] = -r[j,t] r[t,j]
    p = torch.full([n, k], 1.0 / k, dtype=r.dtype, device=r.device)
    active = torch.ones([n, 1], dtype=torch.bool, device=r.device)
    for _ in range(max(100, k)):
        qp = (q @ p.unsqueeze(2)).squeeze(2)
        pqp = (p * qp).sum(1, keepdim=True)
        active = active & ((qp - pqp).abs().amax(1, keepdim=True) >= 0.005 / k)
        if not bool(active.any()):
            break
        for t in range(k):
            qtt = q[:, t, t].unsqueeze(1)
            diff = (pqp - qp[:, t : t + 1]) / qtt
            new_p = p.clone()
            new_p[:, t : t + 1] += diff
            new_pqp = (pqp + diff * (diff * qtt + 2.0 * qp[:, t : t + 1])) / ((1.0 + diff) * (1.0 + diff))
            new_p = new_p / (1.0 + diff)
            new_qp = (qp + diff * q[:, t, :]) / (1.0 + diff)
            p = torch.where(active, new_p, p)
            pqp = torch.where(active, new_pqp, pqp)
            qp = torch.where(active, new_qp, qp)
    return p


def _one_vs_one(kernel: Tensor, coefs: Tensor, counts: list[int], rho: Tensor) -> tuple[Tensor, Tensor]:
    """Decision values [N, k(k-1)/2] of every class pair (i < j) and the votes [N, k] they cast."""
    k = len(counts)
    starts: list[int] = [0]
    for c in counts:
        starts.append(starts[-1] + c)
    votes = torch.zeros([kernel.shape[0], k], dtype=kernel.dtype, device=kernel.device)
    scores: list[Tensor] = []
    pair = 0
    for i in range(k):
        for j in range(i + 1, k):
            s = kernel[:, starts[i] : starts[i + 1]] @ coefs[j - 1, starts[i] : starts[i + 1]]
            s = s + kernel[:, starts[j] : starts[j + 1]] @ coefs[i, starts[j] : starts[j + 1]] + rho[pair]
            votes[:, i] += (s > 0).to(votes.dtype)
            votes[:, j] += (s <= 0).to(votes.dtype)
            scores.append(s)
            pair += 1
    return torch.stack(scores, 1), votes


def _two_scores(s: Tensor, transform: str) -> Tensor:
    """One decision value per sample as the two class scores onnxruntime writes: [-s, s] transformed."""
    if transform == "PROBIT":
        return _probit(s)
    return _post_transform(torch.cat([-s, s], 1), transform)


@TORCH.register(_ML + "SVMClassifier", since=1)
def svm_classifier(
    x: Tensor,
    classlabels_ints: list[int] | None = None,
    classlabels_strings: list[str] | None = None,
    coefficients: list[float] | None = None,
    kernel_params: list[float] | None = None,
    kernel_type: str = "LINEAR",
    post_transform: str = "NONE",
    prob_a: list[float] | None = None,
    prob_b: list[float] | None = None,
    rho: list[float] | None = None,
    support_vectors: list[float] | None = None,
    vectors_per_class: list[int] | None = None,
) -> tuple[Tensor, Tensor]:
    _no_strings("SVMClassifier", classlabels_strings)
    labels: list[int] = [] if classlabels_ints is None else classlabels_ints
    counts: list[int] = [] if vectors_per_class is None else vectors_per_class
    if len(counts) == 0 or sum(counts) == 0:
        raise RuntimeError("SVMClassifier: only the support-vector form (vectors_per_class) has a torch kernel")
    xd = _rows(x).to(torch.float64)
    k = max(len(labels), 1)
    vectors = _floats(support_vectors, x).to(torch.float64).reshape(sum(counts), -1)
    coefs = _floats(coefficients, x).to(torch.float64).reshape(-1, sum(counts))
    biases = _floats(rho, x).to(torch.float64)
    decision, votes = _one_vs_one(_svm_kernel(xd, vectors, kernel_type, kernel_params), coefs, counts, biases)
    winner = votes.argmax(1)
    label = torch.tensor(labels, dtype=torch.int64, device=x.device)[winner] if len(labels) > 0 else winner
    if prob_a is not None and len(prob_a) > 0:
        a, b = _floats(prob_a, x).to(torch.float64), _floats(prob_b, x).to(torch.float64)
        pairwise = torch.sigmoid(-(decision * a + b)).clamp(1e-7, 1.0 - 1e-7)
        r = torch.zeros([xd.shape[0], k, k], dtype=torch.float64, device=x.device)
        pair = 0
        for i in range(k):
            for j in range(i + 1, k):
                r[:, i, j] = pairwise[:, pair]
                r[:, j, i] = 1.0 - pairwise[:, pair]
                pair += 1
        return label, _post_transform(_pairwise_probabilities(r), post_transform).to(torch.float32)
    if decision.shape[1] == 1:
        return label, _two_scores(decision, post_transform).to(torch.float32)
    return label, _post_transform(decision, post_transform).to(torch.float32)
