"""String ops on ``tf.string`` tensors: StringConcat, RegexFullMatch, StringSplit (opset 20), StringNormalizer (10).

TensorFlow holds strings as UTF-8 bytes; patterns are RE2, as ONNX specifies.
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF


@TF.register("StringConcat", since=20)
def string_concat(x, y):
    shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(y))
    return tf.strings.join([tf.broadcast_to(x, shape), tf.broadcast_to(y, shape)])


@TF.register("RegexFullMatch", since=20)
def regex_full_match(x, pattern: str):
    return tf.strings.regex_full_match(x, pattern)


@TF.register("StringSplit", since=20)
def string_split(x, delimiter: str | None = None, maxsplit: int | None = None, num_outputs: int = 2):
    """Split every string; Y pads the pieces with "" to the longest split, Z counts the pieces."""
    pieces = tf.strings.split(x, sep=delimiter or None, maxsplit=-1 if maxsplit is None else maxsplit)
    if not delimiter:  # splitting on whitespace never yields "" (TensorFlow adds one after a maxsplit that runs out)
        pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)
    y = pieces.to_tensor(default_value="")
    counts = pieces.nested_row_lengths()[-1] if isinstance(pieces, tf.RaggedTensor) else tf.zeros([0], tf.int64)
    z = tf.reshape(tf.cast(counts, tf.int64), tf.shape(x))
    return (y, z)[:max(1, num_outputs)]


def _is_in(x: tf.Tensor, words: list[str]) -> tf.Tensor:
    return tf.reduce_any(tf.equal(x[..., tf.newaxis], tf.constant(words, tf.string)), -1)


@TF.register("StringNormalizer", since=10)
def string_normalizer(x, *, case_change_action: str = "NONE", is_case_sensitive: int = 0, locale: str | None = None,
                      stopwords=None):
    """Drop stopwords and empty strings from a [C] or [1, C] tensor ([""] when none is left), change case.

    Case-insensitive stopwords compare lower-cased; case changes are Unicode-aware, accents are kept.
    """
    if x.shape.rank not in (1, 2):
        raise ValueError("StringNormalizer takes a [C] or [1, C] tensor")
    row = x if x.shape.rank == 1 else tf.reshape(x, [-1])
    keep = tf.strings.length(row) > 0
    if stopwords:
        if is_case_sensitive:
            keep &= ~_is_in(row, list(stopwords))
        else:
            keep &= ~_is_in(tf.strings.lower(row, encoding="utf-8"), [w.lower() for w in stopwords])
    if case_change_action == "LOWER":
        row = tf.strings.lower(row, encoding="utf-8")
    elif case_change_action == "UPPER":
        row = tf.strings.upper(row, encoding="utf-8")
    kept = tf.boolean_mask(row, keep)
    kept = tf.concat([kept, [""]], 0)[:tf.maximum(tf.size(kept), 1)]
    return kept if x.shape.rank == 1 else kept[tf.newaxis]
