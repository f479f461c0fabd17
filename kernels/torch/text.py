"""Text featurization: TfIdfVectorizer (opset 9), on integer tokens.

For every n-gram length ``n`` of the pool in ``[min_gram_length,
max_gram_length]`` and every step ``s`` between its items (1 to
``max_skip_count + 1``; unigrams only once, at ``s = 1``), the kernel gathers
each window ``x[i], x[i + s], ..., x[i + (n-1)s]`` of a row, counts the windows
equal to each pool n-gram and adds the counts into the output column that
``ngram_indexes`` gives that n-gram (pool n-grams are numbered in pool order,
shortest first). ``mode`` then weights the counts: TF as they are, IDF the
n-gram's weight where it occurs, TFIDF ``weight * count`` (weights default to
ones). String pools have no kernel: torch has no string tensors.
"""

import torch
from torch import Tensor

from kernels.torch import TORCH


def _matches(rows: Tensor, grams: Tensor, step: int) -> Tensor:
    """How often each n-gram of ``grams`` [P, n] occurs in each row of ``rows`` [B, L],
    its items ``step`` apart: float32 [B, P]."""
    n = grams.shape[1]
    windows = max(rows.shape[1] - (n - 1) * step, 0)
    starts = torch.arange(windows, device=rows.device).unsqueeze(1)
    items = rows[:, starts + torch.arange(n, device=rows.device) * step]  # [B, W, n]
    return (items.unsqueeze(2) == grams).all(-1).sum(1).to(torch.float32)


@TORCH.register("TfIdfVectorizer", since=9)
def tf_idf_vectorizer(
    x: Tensor,
    max_gram_length: int = 0,
    max_skip_count: int = 0,
    min_gram_length: int = 0,
    mode: str = "TF",
    ngram_counts: list[int] | None = None,
    ngram_indexes: list[int] | None = None,
    pool_int64s: list[int] | None = None,
    pool_strings: list[str] | None = None,
    weights: list[float] | None = None,
) -> Tensor:
    if pool_int64s is None or ngram_counts is None or ngram_indexes is None:
        raise RuntimeError("TfIdfVectorizer: only integer pools (pool_int64s) have a torch kernel")
    if mode != "TF" and mode != "IDF" and mode != "TFIDF":
        raise RuntimeError("TfIdfVectorizer: unknown mode " + mode)
    size = max(ngram_indexes) + 1
    rows = (x.unsqueeze(0) if x.dim() == 1 else x).to(torch.int64)
    pool = torch.tensor(pool_int64s, dtype=torch.int64, device=x.device)
    columns = torch.tensor(ngram_indexes, dtype=torch.int64, device=x.device)
    freq = torch.zeros((rows.shape[0], size), dtype=torch.float32, device=x.device)
    first = 0  # the number of the first pool n-gram of length n
    for i in range(len(ngram_counts)):
        n = i + 1
        end = ngram_counts[i + 1] if i + 1 < len(ngram_counts) else len(pool_int64s)
        grams = pool[ngram_counts[i] : end].reshape(-1, n)
        count = grams.shape[0]
        if count > 0 and min_gram_length <= n and n <= max_gram_length:
            for step in range(1, max_skip_count + 2 if n > 1 else 2):
                freq.index_add_(1, columns[first : first + count], _matches(rows, grams, step))
        first += count
    if mode != "TF":
        w = torch.ones_like(freq[0]) if weights is None else torch.tensor(weights, dtype=torch.float32, device=x.device)
        freq = torch.where(freq > 0, w, torch.zeros_like(freq)) if mode == "IDF" else freq * w
    return freq if x.dim() == 2 else freq[0]
