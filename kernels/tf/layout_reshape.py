"""Layout rules for Transpose and Reshape: keep a permuted tensor permuted (channel shuffles in NHWC).

A value held in layout ``p`` (``held == transpose(native, p)``, see
``kernels.tf.run.Held``) goes through these ops without being brought back to
ONNX's layout first:

1. ``Transpose(x, q)`` costs nothing: the held tensor is the result, held in
   layout ``p'[j] = q⁻¹[p[j]]`` (native when that is the identity).
2. ``Reshape(x, shape)`` with a constant ``shape``: the native reshape splits
   and merges groups of adjacent axes (``[N, C, H, W] -> [N, g, C/g, H, W]``).
   When every group's axes lie adjacent and in order in the held tensor, the
   reshape runs on it directly; otherwise one transpose gathers each group
   first. The result is held with each group's new axes where the group was.

So ShuffleNet's channel shuffle on an NHWC tensor, ``Reshape -> Transpose(0, 2,
1, 3, 4) -> Reshape``, becomes ``[N, H, W, g, C/g] -> transpose -> [N, H, W, C]``:
one transpose, as a channels-last implementation would write it, not three.
Rule 2 declines a reshape that would need a transpose and still leave a layout
other than native or channels-last (a later op could pay a second one).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import ir
from kernels.tf._util import channels_last_perm, static
from kernels.tf.run import Held, Walker, inverse_perm, layout_perm

Env = dict[ir.Value, Held]
#: Groups of native input axes and the native output axes each becomes.
Groups = list[tuple[list[int], list[int]]]


def transpose(w: Walker, node: ir.Node, env: Env) -> bool:
    """Rule 1: a Transpose of a permuted tensor only changes its recorded layout."""
    held = w.held(env, node.inputs[0])
    r = held.tensor.shape.rank
    if held.perm is None or r is None:
        return False
    attr = node.attributes.get("perm")
    q = list(attr.value) if attr is not None else list(reversed(range(r)))
    q_inv = inverse_perm(q)
    w.store(env, node, [held.tensor], perm=layout_perm([q_inv[a] for a in held.perm]))
    return True


def _target(shape: list[int], ins: list[int | None], allowzero: bool) -> list[int | None] | None:
    """The Reshape's output dims (``None``: dynamic), or None when they cannot be resolved."""
    out: list[int | None] = [ins[i] if v == 0 and not allowzero else v for i, v in enumerate(shape)]
    if -1 not in out:
        return out
    known_in = int(np.prod([d for d in ins if d is not None]))
    known_out = int(np.prod([d for d in out if d is not None and d != -1]))
    if ins.count(None) == out.count(None) and known_out > 0 and known_in % known_out == 0:
        out[out.index(-1)] = known_in // known_out  # every dynamic dim is copied (a 0 in the shape)
    elif ins.count(None) == out.count(None) + 1 and known_in == known_out:
        out[out.index(-1)] = None  # the -1 is the one dynamic dim that is not copied
    else:
        return None
    return out


def _groups(ins: list[int | None], outs: list[int | None]) -> Groups | None:
    """Split native input and output dims into runs of equal size (a dynamic dim only as 1:1)."""
    groups: Groups = []
    i = j = 0
    while i < len(ins) and j < len(outs):
        if ins[i] is None or outs[j] is None:
            if ins[i] is not None or outs[j] is not None:
                return None
            groups.append(([i], [j]))
            i, j = i + 1, j + 1
            continue
        a, b = [i], [j]
        pa, pb = ins[i], outs[j]
        while pa != pb:
            if pa < pb and i + len(a) < len(ins) and ins[i + len(a)] is not None:
                pa *= ins[i + len(a)]
                a.append(i + len(a))
            elif pb < pa and j + len(b) < len(outs) and outs[j + len(b)] is not None:
                pb *= outs[j + len(b)]
                b.append(j + len(b))
            else:
                return None
        groups.append((a, b))
        i, j = i + len(a), j + len(b)
    rest_in, rest_out = list(range(i, len(ins))), list(range(j, len(outs)))
    if any(ins[k] != 1 for k in rest_in) or any(outs[k] != 1 for k in rest_out):
        return None
    if not groups:
        return None
    groups[-1] = (groups[-1][0] + rest_in, groups[-1][1] + rest_out)  # trailing unit axes
    return groups


def _non_unit(order: list[int], dims: list[int | None]) -> list[int]:
    return [a for a in order if dims[a] != 1]


def reshape(w: Walker, node: ir.Node, env: Env) -> bool:
    """Rule 2: a Reshape of a permuted tensor, done in its layout."""
    held = w.held(env, node.inputs[0])
    shape = static(w.native(env, node.inputs[1])) if len(node.inputs) > 1 else None
    if held.perm is None or shape is None or len(held.perm) != held.tensor.shape.rank:
        return False
    p = list(held.perm)
    ins: list[int | None] = [None] * len(p)
    for j, a in enumerate(p):
        ins[a] = held.tensor.shape[j]
    allowzero = bool(node.attributes["allowzero"].value) if "allowzero" in node.attributes else False
    outs = _target([int(v) for v in np.asarray(shape).reshape(-1)], ins, allowzero)
    groups = None if outs is None else _groups(ins, outs)
    if groups is None:
        return False
    group_of = {a: g for g, (axes, _) in enumerate(groups) for a in axes}
    gathered, out_order, seen = [], [], set()
    for a in p:  # each group at the place of its first axis in the held tensor, its axes in order
        g = group_of[a]
        if g not in seen:
            seen.add(g)
            gathered += groups[g][0]
            out_order += groups[g][1]
    moved = _non_unit(p, ins) != _non_unit(gathered, ins)
    out_perm = layout_perm(out_order)
    if moved and out_perm is not None and out_perm != tuple(channels_last_perm(len(out_order))):
        return False
    t = tf.transpose(held.tensor, [p.index(a) for a in gathered]) if moved else held.tensor
    source = {b[0]: a[0] for a, b in groups if len(a) == 1 and len(b) == 1}  # a dynamic dim's input axis
    dims = [outs[a] for a in out_order]
    if dims.count(None) == 1 and all(d is None or d > 0 for d in dims):  # one dynamic dim: a constant shape
        dims = [-1 if d is None else d for d in dims]
    dims = [d if d is not None else tf.shape(held.tensor)[p.index(source[a])] for a, d in zip(out_order, dims, strict=True)]
    y = tf.reshape(t, dims if all(isinstance(d, int) for d in dims) else tf.stack(dims))
    w.store(env, node, [y], perm=out_perm)
    return True
