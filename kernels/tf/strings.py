"""String ops on ``tf.string`` tensors: StringConcat, RegexFullMatch, StringSplit (opset 20).

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
    y = pieces.to_tensor(default_value="")
    counts = pieces.nested_row_lengths()[-1] if isinstance(pieces, tf.RaggedTensor) else tf.zeros([0], tf.int64)
    z = tf.reshape(tf.cast(counts, tf.int64), tf.shape(x))
    return (y, z)[:max(1, num_outputs)]
