"""Shape and layout ops: reshape, transpose, (un)squeeze, concat, split, slice,
expand, tile, pad, flatten, shape/size, depth-space rearrangements, identity."""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import ints, norm_axes, norm_axis


@TORCH.register("Reshape", since=5)
def reshape(data: Tensor, shape: Tensor, allowzero: int = 0) -> Tensor:
    dims = ints(shape)
    if allowzero == 0:
        # 0 copies the input's dim at that position.
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return data.reshape(dims)


@TORCH.register("Transpose", since=1)
def transpose(data: Tensor, perm: list[int] | None = None) -> Tensor:
    if perm is None or len(perm) == 0:
        perm = list(range(data.dim()))[::-1]
    return data.permute(perm)


def _squeeze(data: Tensor, axes: list[int] | None) -> Tensor:
    dims: list[int] = []
    if axes is None or len(axes) == 0:
        for i, d in enumerate(data.shape):
            if d == 1:
                dims.append(i)
    else:
        dims = norm_axes(axes, data.dim())
    keep: list[int] = []
    for i, d in enumerate(data.shape):
        if i not in dims:
            keep.append(d)
    return data.reshape(keep)


@TORCH.register("Squeeze", since=1)
def squeeze_1(data: Tensor, axes: list[int] | None = None) -> Tensor:
    return _squeeze(data, axes)


@TORCH.register("Squeeze", since=13)
def squeeze(data: Tensor, axes: Tensor | None = None) -> Tensor:
    return _squeeze(data, None if axes is None else ints(axes))


def _unsqueeze(data: Tensor, axes: list[int]) -> Tensor:
    rank = data.dim() + len(axes)
    dims = norm_axes(axes, rank)
    shape: list[int] = []
    src = 0
    for i in range(rank):
        if i in dims:
            shape.append(1)
        else:
            shape.append(data.shape[src])
            src += 1
    return data.reshape(shape)


@TORCH.register("Unsqueeze", since=1)
def unsqueeze_1(data: Tensor, axes: list[int] | None = None) -> Tensor:
    assert axes is not None
    return _unsqueeze(data, axes)


@TORCH.register("Unsqueeze", since=13)
def unsqueeze(data: Tensor, axes: Tensor) -> Tensor:
    return _unsqueeze(data, ints(axes))


@TORCH.register("Concat", since=4)
def concat(inputs: list[Tensor], axis: int = 0) -> Tensor:
    return torch.cat(inputs, norm_axis(axis, inputs[0].dim()))


def _split(x: Tensor, sizes: list[int] | None, axis: int, num_outputs: int) -> list[Tensor]:
    dim = norm_axis(axis, x.dim())
    if sizes is None or len(sizes) == 0:
        n = x.shape[dim]
        # Equal parts; when n does not divide evenly (opset 18), the last is smaller.
        chunk = (n + num_outputs - 1) // num_outputs
        sizes = [chunk] * (num_outputs - 1) + [n - chunk * (num_outputs - 1)]
    return list(torch.split(x, sizes, dim))


@TORCH.register("Split", since=2)
def split_2(input: Tensor, axis: int = 0, split: list[int] | None = None, num_outputs: int = 1) -> list[Tensor]:  # noqa: A002
    return _split(input, split, axis, num_outputs)


@TORCH.register("Split", since=13)
def split(input: Tensor, split: Tensor | None = None, axis: int = 0, num_outputs: int = 1) -> list[Tensor]:  # noqa: A002
    return _split(input, None if split is None else ints(split), axis, num_outputs)


def _slice(data: Tensor, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None) -> Tensor:
    if axes is None or len(axes) == 0:
        axes = list(range(len(starts)))
    axes = norm_axes(axes, data.dim())
    out = data
    for i, axis in enumerate(axes):
        n = out.shape[axis]
        step = 1 if steps is None or len(steps) == 0 else steps[i]
        start, end = starts[i], ends[i]
        start = start + n if start < 0 else start
        end = end + n if end < 0 else end
        if step > 0:
            start = min(max(start, 0), n)
            end = min(max(end, 0), n)
        else:
            start = min(max(start, 0), n - 1)
            end = min(max(end, -1), n - 1)
        if step == 1:
            out = out.narrow(axis, start, max(end - start, 0))
        else:
            idx = torch.arange(start, end, step, dtype=torch.int64, device=data.device)
            out = torch.index_select(out, axis, idx)
    return out


@TORCH.register("Slice", since=1)
def slice_1(data: Tensor, axes: list[int] | None = None, ends: list[int] | None = None, starts: list[int] | None = None) -> Tensor:
    assert starts is not None and ends is not None
    return _slice(data, starts, ends, axes, None)


@TORCH.register("Slice", since=10)
def slice(data: Tensor, starts: Tensor, ends: Tensor, axes: Tensor | None = None, steps: Tensor | None = None) -> Tensor:  # noqa: A001
    return _slice(data, ints(starts), ints(ends), None if axes is None else ints(axes), None if steps is None else ints(steps))


@TORCH.register("Expand", since=8)
def expand(input: Tensor, shape: Tensor) -> Tensor:  # noqa: A002
    dims = ints(shape)
    rank = max(len(dims), input.dim())
    a = [1] * (rank - input.dim()) + list(input.shape)
    b = [1] * (rank - len(dims)) + dims
    # Bidirectional broadcast: a 1 in the requested shape keeps the input's dim.
    out = [a[i] if b[i] == 1 else b[i] for i in range(rank)]
    return input.reshape(a).expand(out).contiguous()


@TORCH.register("Tile", since=6)
def tile(input: Tensor, repeats: Tensor) -> Tensor:  # noqa: A002
    return input.repeat(ints(repeats))


@TORCH.register("Flatten", since=1)
def flatten(input: Tensor, axis: int = 1) -> Tensor:  # noqa: A002
    axis = norm_axis(axis, input.dim())
    lead = 1
    for d in input.shape[:axis]:
        lead *= d
    trail = 1
    for d in input.shape[axis:]:
        trail *= d
    return input.reshape([lead, trail])


@TORCH.register("Shape", since=1)
def shape(data: Tensor, start: int = 0, end: int | None = None) -> Tensor:
    dims: list[int] = list(data.shape)
    rank = len(dims)
    s = min(max(norm_axis(start, rank), 0), rank)
    e = rank if end is None else min(max(norm_axis(end, rank), 0), rank)
    return torch.tensor(dims[s:e], dtype=torch.int64, device=data.device)


@TORCH.register("Size", since=1)
def size(data: Tensor) -> Tensor:
    return torch.tensor(data.numel(), dtype=torch.int64, device=data.device)


@TORCH.register("Identity", since=1)
def identity(input: Tensor) -> Tensor:  # noqa: A002
    return input


@TORCH.register("Dropout", since=12)
def dropout(data: Tensor, ratio: Tensor | None = None, training_mode: Tensor | None = None, seed: int | None = None) -> tuple[Tensor, Tensor]:
    # Inference semantics only: the data passes through and the mask is all true.
    return data, torch.ones_like(data, dtype=torch.bool)


@TORCH.register("Dropout", since=10)
def dropout_10(data: Tensor, ratio: float = 0.5) -> tuple[Tensor, Tensor]:
    """Before 12 the spec leaves the mask unfilled in inference; onnxruntime fills it with false."""
    return data, torch.zeros_like(data, dtype=torch.bool)


@TORCH.register("Dropout", since=7)
def dropout_7(data: Tensor, ratio: float = 0.5) -> tuple[Tensor, Tensor]:
    """As from 10, but the mask has the data's type (zeros, as onnxruntime fills it)."""
    return data, torch.zeros_like(data)


# --- pad -------------------------------------------------------------------------


def _pad_index(n: int, before: int, after: int, mode: str, device: torch.device) -> Tensor:
    """Source positions for one padded axis (constant mode: clamped, masked later)."""
    i = torch.arange(-before, n + after, dtype=torch.int64, device=device)
    if mode == "reflect":
        period = 2 * (n - 1)
        if period == 0:
            return torch.zeros_like(i)
        i = torch.remainder(i, period)
        return torch.where(i >= n, period - i, i)
    if mode == "wrap":
        return torch.remainder(i, n)
    return torch.clamp(i, 0, n - 1)


def _pad(data: Tensor, pads: list[int], mode: str, value: Tensor | None, axes: list[int] | None) -> Tensor:
    rank = data.dim()
    if axes is None or len(axes) == 0:
        axes = list(range(rank))
    axes = norm_axes(axes, rank)
    k = len(axes)
    out = data
    for j, axis in enumerate(axes):
        before, after = pads[j], pads[j + k]
        if before == 0 and after == 0:
            continue
        n = out.shape[axis]
        if before < 0:  # negative pads crop
            out = out.narrow(axis, -before, n + before)
            n = n + before
            before = 0
        if after < 0:
            out = out.narrow(axis, 0, n + after)
            n = n + after
            after = 0
        if before == 0 and after == 0:
            continue
        if mode == "constant" or n == 0:
            fill_shape = list(out.shape)
            parts: list[Tensor] = []
            fill = torch.zeros(1, dtype=out.dtype, device=out.device) if value is None else value.reshape(1).to(out.dtype)
            if before > 0:
                fill_shape[axis] = before
                parts.append(fill.expand(fill_shape))
            parts.append(out)
            if after > 0:
                fill_shape[axis] = after
                parts.append(fill.expand(fill_shape))
            out = torch.cat(parts, axis)
        else:
            out = torch.index_select(out, axis, _pad_index(n, before, after, mode, out.device))
    return out


@TORCH.register("Pad", since=2)
def pad_2(data: Tensor, mode: str = "constant", pads: list[int] | None = None, value: float = 0.0) -> Tensor:
    assert pads is not None
    return _pad(data, pads, mode, torch.tensor(value, device=data.device), None)


@TORCH.register("Pad", since=11)
def pad(data: Tensor, pads: Tensor, constant_value: Tensor | None = None, axes: Tensor | None = None, mode: str = "constant") -> Tensor:
    return _pad(data, ints(pads), mode, constant_value, None if axes is None else ints(axes))


# --- depth / space ---------------------------------------------------------------


@TORCH.register("DepthToSpace", since=11)
def depth_to_space(input: Tensor, blocksize: int = 1, mode: str = "DCR") -> Tensor:  # noqa: A002
    b, c, h, w = input.shape
    s = blocksize
    if mode == "DCR":
        t = input.reshape([b, s, s, c // (s * s), h, w]).permute([0, 3, 4, 1, 5, 2])
    else:
        t = input.reshape([b, c // (s * s), s, s, h, w]).permute([0, 1, 4, 2, 5, 3])
    return t.reshape([b, c // (s * s), h * s, w * s])


@TORCH.register("SpaceToDepth", since=1)
def space_to_depth(input: Tensor, blocksize: int = 1, mode: str = "DCR") -> Tensor:  # noqa: A002
    b, c, h, w = input.shape
    s = blocksize
    t = input.reshape([b, c, h // s, s, w // s, s])
    # DCR puts the block offsets before the channel (the inverse of DepthToSpace DCR).
    t = t.permute([0, 3, 5, 1, 2, 4]) if mode == "DCR" else t.permute([0, 1, 3, 5, 2, 4])
    return t.reshape([b, c * s * s, h // s, w // s])
