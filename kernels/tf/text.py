"""Text featurization: TfIdfVectorizer (opset 9), on int or string tokens.

onnx's reference walks a trie of the pool's n-grams from every start position
and skip distance. The same count, vectorized: for every n-gram length ``n`` in
``[min_gram_length, max_gram_length]`` and skip distance ``s`` (1 to
``max_skip_count + 1``; unigrams only at ``s = 1``, they have no gaps), gather
every window ``x[i], x[i + s], ..., x[i + (n-1)s]``, compare it with each pool
n-gram of length ``n`` and add the matches into the output column that
``ngram_indexes`` names. Then ``mode`` weights the counts: TF as they are, IDF
``weight`` where the count is positive, TFIDF ``weight * count`` (``weights``
default to ones).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kernels.tf import TF


def _pool_ngrams(pool: list, ngram_counts: list[int], ngram_indexes: list[int]) -> dict[int, tuple[list, list[int]]]:
    """Pool n-grams by length: ``{n: (n-grams, output columns)}`` (ids count every pool entry in order)."""
    out: dict[int, tuple[list, list[int]]] = {}
    ngram_id = 0
    for i, start in enumerate(ngram_counts):
        n = i + 1
        end = ngram_counts[i + 1] if i + 1 < len(ngram_counts) else len(pool)
        grams = [pool[j:j + n] for j in range(start, end - n + 1, n)]
        out[n] = (grams, list(ngram_indexes[ngram_id:ngram_id + len(grams)]))
        ngram_id += len(grams)
    return out


def _counts(x: tf.Tensor, grams: list, columns: list[int], n: int, skip: int, size: int) -> tf.Tensor:
    """Matches of the length-``n`` pool n-grams in ``x`` [B, L] at skip distance ``skip``: [B, size]."""
    length = tf.shape(x)[1]
    starts = tf.range(tf.maximum(length - (n - 1) * skip, 0))
    windows = tf.gather(x, starts[:, tf.newaxis] + np.arange(n) * skip, axis=1)  # [B, W, n]
    pool = tf.constant(np.array(grams).reshape(-1, n), x.dtype) if x.dtype == tf.string else \
        tf.cast(np.array(grams, np.int64).reshape(-1, n), x.dtype)
    hits = tf.reduce_all(tf.equal(windows[:, :, tf.newaxis, :], pool), -1)  # [B, W, P]
    per_gram = tf.reduce_sum(tf.cast(hits, tf.float32), 1)  # [B, P]
    return tf.matmul(per_gram, tf.one_hot(columns, size, dtype=tf.float32))


@TF.register("TfIdfVectorizer", since=9)
def tf_idf_vectorizer(x, *, max_gram_length: int, max_skip_count: int, min_gram_length: int, mode: str,
                      ngram_counts, ngram_indexes, pool_int64s=None, pool_strings=None, weights=None):
    pool = list(pool_strings) if pool_strings else list(pool_int64s or [])
    if pool_strings:
        pool = [p.decode() if isinstance(p, bytes) else p for p in pool]
    size = max(ngram_indexes) + 1
    rows = x if x.shape.rank == 2 else x[tf.newaxis]
    freq = tf.zeros(tf.stack([tf.shape(rows)[0], size]), tf.float32)
    for n, (grams, columns) in _pool_ngrams(pool, list(ngram_counts), list(ngram_indexes)).items():
        if not grams or not min_gram_length <= n <= max_gram_length:
            continue
        for skip in range(1, (max_skip_count + 2) if n > 1 else 2):
            freq += _counts(rows, grams, columns, n, skip, size)
    w = tf.constant(np.asarray(weights if weights else np.ones(size), np.float32))
    if mode == "IDF":
        freq = tf.where(freq > 0, w, tf.zeros_like(freq))
    elif mode == "TFIDF":
        freq = freq * w
    elif mode != "TF":
        raise ValueError(f"TfIdfVectorizer mode {mode!r}")
    return freq if x.shape.rank == 2 else freq[0]
