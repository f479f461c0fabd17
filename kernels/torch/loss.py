"""Loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both gather the target's log-probability along the class axis (axis 1), weight
it, and reduce: ``mean`` divides by the summed weights of the targets that are
not ``ignore_index``. Ignored targets (which may lie outside ``[0, C)``) are
replaced by class 0 before gathering and get weight 0.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.torch import TORCH

_NO_IGNORE = -9223372036854775807


def _nll(
    log_prob: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int, reduction: str
) -> Tensor:
    """ONNX NegativeLogLikelihoodLoss on ``[N, C, d...]`` scores and ``[N, d...]`` targets."""
    target = target.to(torch.int64)
    ignored = target == ignore_index
    safe = torch.where(ignored, torch.zeros_like(target), target)
    picked = -torch.gather(log_prob, 1, safe.unsqueeze(1)).squeeze(1)
    w = torch.ones_like(picked) if weight is None else weight.to(log_prob.dtype)[safe]
    w = torch.where(ignored, torch.zeros_like(w), w)
    loss = picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


@TORCH.register("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = _NO_IGNORE,
    reduction: str = "mean",
) -> Tensor:
    return _nll(input, target, weight, ignore_index, reduction)


@TORCH.register("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(
    scores: Tensor,
    labels: Tensor,
    weights: Tensor | None = None,
    ignore_index: int = _NO_IGNORE,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor]:
    log_prob = F.log_softmax(scores, 1)
    return _nll(log_prob, labels, weights, ignore_index, reduction), log_prob
