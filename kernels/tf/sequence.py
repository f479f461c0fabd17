"""Sequence ops (opset 11+) over Python lists of tensors, and Optional ops (opset 15+).

A sequence value is a Python ``list`` of tensors, an empty optional is ``None``;
kernels that produce one return it in a 1-tuple (a bare list would read as
several outputs).
This works eagerly and while tracing as long as the number of elements and the
positions are known while tracing (constants, or sizes of static axes), which
is the case for sequences built and consumed inside one graph. A SavedModel
signature cannot take or return a list, so models with sequence inputs or
outputs do not export.
"""

from __future__ import annotations

import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import axis_of, rank, static, static_ints


def _position(position, length: int, what: str = "position") -> int:
    (p,) = static_ints(position, what)
    return p + length if p < 0 else p


@TF.register("SequenceEmpty", since=11)
def sequence_empty(dtype: int = 1):
    del dtype  # an empty list has no element type to keep
    return ([],)


@TF.register("SequenceConstruct", since=11)
def sequence_construct(inputs):
    return (list(inputs),)


@TF.register("SequenceLength", since=11)
def sequence_length(seq):
    return tf.constant(len(seq), tf.int64)


@TF.register("SequenceAt", since=11)
def sequence_at(seq, position):
    return seq[_position(position, len(seq))]


@TF.register("SequenceInsert", since=11)
def sequence_insert(seq, tensor, position=None):
    out = list(seq)
    out.insert(len(out) if position is None else _position(position, len(out)), tensor)
    return (out,)


@TF.register("SequenceErase", since=11)
def sequence_erase(seq, position=None):
    out = list(seq)
    del out[-1 if position is None else _position(position, len(out))]
    return (out,)


@TF.register("ConcatFromSequence", since=11)
def concat_from_sequence(seq, *, axis: int, new_axis: int = 0):
    if new_axis:
        return tf.stack(seq, axis)
    return tf.concat(seq, axis)


@TF.register("SplitToSequence", since=11)
def split_to_sequence(x, split=None, *, axis: int = 0, keepdims: int = 1):
    axis = axis_of(axis, rank(x))
    if split is None:
        size = x.shape[axis]
        if size is None:
            raise ValueError("SplitToSequence without split needs a static axis size")
        pieces = tf.split(x, size, axis)
        return ([tf.squeeze(p, [axis]) for p in pieces] if not keepdims else pieces,)
    sizes = static(split)
    if sizes is None:
        raise ValueError("SplitToSequence needs constant split sizes")
    if sizes.ndim == 0:
        total = x.shape[axis]
        if total is None:
            raise ValueError("SplitToSequence by a chunk size needs a static axis size")
        chunk = int(sizes)
        sizes = [chunk] * (total // chunk) + ([total % chunk] if total % chunk else [])
    return (tf.split(x, [int(s) for s in sizes], axis),)


@TF.register("SequenceMap", since=17)
def sequence_map(seq, additional_inputs, body, num_outputs: int = 1):
    outputs: list[list] = [[] for _ in range(num_outputs)]
    for i, item in enumerate(seq):
        extra = [a[i] if isinstance(a, list) else a for a in additional_inputs]
        for out, value in zip(outputs, body(item, *extra), strict=True):
            out.append(value)
    return tuple(outputs)


@TF.register("Optional", since=15)
def optional(value=None, *, type=None):  # noqa: A002 (the ONNX attribute's name)
    del type
    return (value,)


@TF.register("OptionalHasElement", since=15)
def optional_has_element(value=None):
    return tf.constant(value is not None)


@TF.register("OptionalGetElement", since=15)
def optional_get_element(value):
    if value is None:
        raise ValueError("OptionalGetElement of an empty optional")
    return (value,)

