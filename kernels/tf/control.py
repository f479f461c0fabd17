"""Control flow: If -> ``tf.cond``, Loop and Scan -> ``tf.while_loop``.

A graph attribute reaches these kernels as a :class:`Body`-like callable (built
by the walker in ``kernels.tf.run``): ``body(*args) -> list[tf.Tensor]``, with
``output_dtypes`` (TensorFlow dtypes of its outputs, ``None`` where unknown)
and ``output_shapes`` (``tf.TensorShape``s, symbolic dims ``None``). Scan
outputs collect in ``kernels.tf.accumulate`` accumulators shaped from the IR, so
that TFLite can lower them. Eagerly, ``tf.cond`` and ``tf.while_loop`` run as Python control flow; inside a
``tf.function`` they become graph control flow, so trip counts and conditions
stay dynamic in a SavedModel. A Loop that carries sequences (Python lists) or
optionals is unrolled while tracing instead, which needs its trip count and
conditions to be constants.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf._util import static
from kernels.tf.accumulate import accumulator, append, invariant, stacked


def _scalar_bool(t) -> tf.Tensor:
    return tf.reshape(tf.cast(t, tf.bool), [])


def _invariant(t) -> tf.TensorShape:
    """Loop-carried values may change size (not rank) from one iteration to the next."""
    if isinstance(t, tf.TensorArray):
        return invariant(t)
    r = t.shape.rank
    return tf.TensorShape(None if r is None else [None] * r)


def _scan_specs(body, args: list, k: int) -> list[tuple[tf.DType, tf.TensorShape]]:
    """Dtype and shape (symbolic dims as ``None``) of each of ``body``'s last ``k`` outputs, from the IR."""
    if not k:
        return []
    dtypes = list(body.output_dtypes[-k:])
    shapes = list(getattr(body, "output_shapes", [tf.TensorShape(None)] * k)[-k:])
    if any(d is None for d in dtypes):  # the IR does not say: trace the body once to learn them
        probe = tf.function(lambda: body(*args)).get_concrete_function()
        outs = tf.nest.flatten(probe.structured_outputs)[-k:]
        dtypes = [t.dtype for t in outs]
        shapes = [tf.TensorShape(None if t.shape.rank is None else [None] * t.shape.rank) for t in outs]
    return list(zip(dtypes, shapes, strict=True))


@TF.register("If", since=1)
def if_(cond, then_branch, else_branch):
    known = static(cond)
    if known is not None:  # decided while tracing (and always, eagerly)
        return then_branch() if bool(known.reshape(-1)[0]) else else_branch()
    return tf.cond(_scalar_bool(cond), then_branch, else_branch)


def _unrolled_loop(max_trip, cond, initial: list, body, k: int) -> list:
    """Loop in Python (carried sequences and optionals cannot be ``tf.while_loop`` state): the trip
    count and every iteration's condition must be known while tracing."""
    trip = None if max_trip is None else static(max_trip)
    keep = True if cond is None else static(cond)
    if (max_trip is not None and trip is None) or keep is None:
        raise ValueError("a Loop carrying sequences needs a constant trip count and condition")
    n = len(initial)
    carried, scans, i = list(initial), [[] for _ in range(k)], 0
    while bool(np.asarray(keep).reshape(-1)[0]) and (trip is None or i < int(np.asarray(trip).reshape(-1)[0])):
        outs = body(tf.constant(i, tf.int64), tf.constant(True), *carried)
        keep = static(outs[0])
        if keep is None:
            raise ValueError("a Loop carrying sequences needs a condition known while tracing")
        carried = list(outs[1:1 + n])
        for values, out in zip(scans, outs[1 + n:], strict=True):
            values.append(out)
        i += 1
    return carried + [tf.stack(values) for values in scans]


@TF.register("Loop", since=1)
def loop(max_trip, cond, initial, body, num_outputs: int = 0):
    n = len(initial)
    k = num_outputs - n
    if any(v is None or isinstance(v, list) for v in initial):
        return _unrolled_loop(max_trip, cond, initial, body, k)
    trip = tf.reshape(tf.cast(max_trip, tf.int64), []) if max_trip is not None else None
    keep = _scalar_bool(cond) if cond is not None else tf.constant(True)

    def go_on(i, c, *_):
        return c if trip is None else tf.logical_and(c, i < trip)

    def step(i, c, *state):
        carried, arrays = state[:n], state[n:]
        outs = body(i, c, *carried)
        new = [tf.cast(o, v.dtype) for o, v in zip(outs[1:1 + n], carried, strict=True)]
        arrays = [append(a, i, o) for a, o in zip(arrays, outs[1 + n:], strict=True)]
        return (i + 1, _scalar_bool(outs[0]), *new, *arrays)

    carried = [tf.convert_to_tensor(v) for v in initial]
    i0 = tf.constant(0, tf.int64)
    arrays = [accumulator(d, s) for d, s in _scan_specs(body, [i0, keep, *carried], k)]
    start = (i0, keep, *carried, *arrays)
    result = tf.while_loop(go_on, step, start, shape_invariants=tuple(_invariant(v) for v in start))
    carried, arrays = list(result[2:2 + n]), result[2 + n:]
    return carried + [stacked(a) for a in arrays]


def _move_axis(x: tf.Tensor, source: int, dest: int) -> tf.Tensor:
    if source == dest:
        return x
    r = x.shape.rank
    if r is None:
        raise ValueError("a scan value of unknown rank cannot move its axis")
    source, dest = source % r, dest % r
    if source == dest:
        return x
    perm = [i for i in range(r) if i != source]
    perm.insert(dest, source)
    return tf.transpose(x, perm)


@TF.register("Scan", since=9)
def scan(inputs, body, num_scan_inputs: int, scan_input_axes=None, scan_input_directions=None,
         scan_output_axes=None, scan_output_directions=None, num_outputs: int = 0):
    m = num_scan_inputs
    n = len(inputs) - m
    states = [tf.convert_to_tensor(s) for s in inputs[:n]]
    seqs = list(inputs[n:])
    in_axes = list(scan_input_axes or [0] * m)
    in_dirs = list(scan_input_directions or [0] * m)
    seqs = [_move_axis(s, a, 0) for s, a in zip(seqs, in_axes, strict=True)]
    seqs = [tf.reverse(s, [0]) if d else s for s, d in zip(seqs, in_dirs, strict=True)]
    k = num_outputs - n
    steps = tf.shape(seqs[0])[0]

    def step(t, *state):
        carried, arrays = state[:n], state[n:]
        outs = body(*carried, *[s[t] for s in seqs])
        new = [tf.cast(o, v.dtype) for o, v in zip(outs[:n], carried, strict=True)]
        arrays = [append(a, t, o) for a, o in zip(arrays, outs[n:], strict=True)]
        return (t + 1, *new, *arrays)

    specs = _scan_specs(body, [*states, *[s[0] for s in seqs]], k)
    start = (tf.constant(0), *states, *[accumulator(d, s) for d, s in specs])
    result = tf.while_loop(lambda t, *_: t < steps, step, start, shape_invariants=tuple(_invariant(v) for v in start))
    out_axes = list(scan_output_axes or [0] * k)
    out_dirs = list(scan_output_directions or [0] * k)
    outputs = []
    for a, axis, d in zip(result[1 + n:], out_axes, out_dirs, strict=True):
        items = stacked(a)
        if d:
            items = tf.reverse(items, [0])
        outputs.append(_move_axis(items, 0, axis))
    return list(result[1:1 + n]) + outputs


@TF.register("Scan", since=8)
def scan_8(sequence_lens, inputs, body, num_scan_inputs: int, directions=None, num_outputs: int = 0):
    """Scan-8: every input has a leading batch axis (scan axis 1); one Scan-9 per batch entry, so the
    batch size must be known while tracing, and so must ``sequence_lens`` when given."""
    batch = inputs[0].shape[0]
    if batch is None:
        raise ValueError("Scan-8 needs a batch size known while tracing")
    n = len(inputs) - num_scan_inputs
    lens = None if sequence_lens is None else static(sequence_lens)
    if sequence_lens is not None and lens is None:
        raise ValueError("Scan-8 needs sequence_lens known while tracing")
    rows = []
    for b in range(batch):
        seqs = [s[b] if lens is None else s[b, :int(lens.reshape(-1)[b])] for s in inputs[n:]]
        rows.append(scan([s[b] for s in inputs[:n]] + seqs, body, num_scan_inputs,
                         scan_input_directions=directions, num_outputs=num_outputs))
    return [tf.stack(list(values)) for values in zip(*rows, strict=True)]
