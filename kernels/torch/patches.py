"""Ops that move image patches by index: Col2Im, MaxUnpool and DeformConv.

Col2Im and MaxUnpool scatter (summing overlaps) into a flat zero image;
DeformConv samples its shifted kernel taps bilinearly (``F.grid_sample`` with
``align_corners`` and zero padding, as the ONNX reference does) and then runs
the grouped convolution as one matrix product.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import ints


def _patch_index(blocks: list[int], kernel: list[int], strides: list[int], dilations: list[int], padded: list[int]) -> Tensor:
    """Flat positions in the padded image, shape ``(prod(kernel), prod(blocks))``, of each tap of each block."""
    index = torch.zeros([1, 1], dtype=torch.int64)
    for i in range(len(kernel)):
        taps = torch.arange(kernel[i], dtype=torch.int64) * dilations[i]
        starts = torch.arange(blocks[i], dtype=torch.int64) * strides[i]
        pos = taps.reshape(-1, 1) + starts.reshape(1, -1)  # (k_i, b_i)
        index = index.reshape(index.shape[0], 1, index.shape[1], 1) * padded[i] + pos.reshape(1, kernel[i], 1, blocks[i])
        index = index.reshape(index.shape[0] * kernel[i], -1)
    return index


@TORCH.register("Col2Im", since=18)
def col2im(
    input: Tensor,  # noqa: A002
    image_shape: Tensor,
    block_shape: Tensor,
    dilations: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    image = ints(image_shape)
    kernel = ints(block_shape)
    n = len(image)
    dl = [1] * n if dilations is None else dilations
    st = [1] * n if strides is None else strides
    pd = [0] * (2 * n) if pads is None else pads
    padded = [image[i] + pd[i] + pd[i + n] for i in range(n)]
    blocks = [(padded[i] - dl[i] * (kernel[i] - 1) - 1) // st[i] + 1 for i in range(n)]
    index = _patch_index(blocks, kernel, st, dl, padded).to(input.device).reshape(-1)
    batch = input.shape[0]
    channels = input.shape[1] // _prod(kernel)
    total = _prod(padded)
    data = input.reshape(batch, channels, -1)
    out = torch.zeros([batch, channels, total], dtype=input.dtype, device=input.device).index_add_(2, index, data)
    out = out.reshape([batch, channels] + padded)
    for i in range(n):
        out = out.narrow(2 + i, pd[i], image[i])
    return out


def _prod(values: list[int]) -> int:
    p = 1
    for v in values:
        p *= v
    return p


@TORCH.register("MaxUnpool", since=9)
def max_unpool(
    x: Tensor,
    i: Tensor,
    output_shape: Tensor | None = None,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    assert kernel_shape is not None
    n = x.dim() - 2
    st = [1] * n if strides is None else strides
    pd = [0] * (2 * n) if pads is None else pads
    shape: list[int] = list(x.shape[:2])
    for d in range(n):
        shape.append((x.shape[2 + d] - 1) * st[d] - pd[d] - pd[d + n] + kernel_shape[d])
    out = torch.zeros(_prod(shape), dtype=x.dtype, device=x.device)
    out = out.scatter(0, i.reshape(-1), x.reshape(-1)).reshape(shape)
    if output_shape is None:
        return out
    target = ints(output_shape)  # as the ONNX reference: the unpooled image at the origin, zeros after
    grow: list[int] = []
    for d in range(x.dim() - 1, -1, -1):
        grow += [0, target[d] - shape[d]]
    return F.pad(out, grow)


@TORCH.register("DeformConv", since=19)
def deform_conv(
    x: Tensor,
    w: Tensor,
    offset: Tensor,
    b: Tensor | None = None,
    mask: Tensor | None = None,
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    offset_group: int = 1,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    assert x.dim() == 4, "DeformConv: 2-D images only"
    n, c, h, wd = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    kh, kw = w.shape[2], w.shape[3]
    oh, ow = offset.shape[2], offset.shape[3]
    dl = [1, 1] if dilations is None else dilations
    st = [1, 1] if strides is None else strides
    pd = [0, 0, 0, 0] if pads is None else pads
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow)
    ys = (torch.arange(kh, device=x.device) * dl[0]).reshape(kh, 1, 1, 1) + (torch.arange(oh, device=x.device) * st[0] - pd[0]).reshape(1, 1, oh, 1)
    xs = (torch.arange(kw, device=x.device) * dl[1]).reshape(1, kw, 1, 1) + (torch.arange(ow, device=x.device) * st[1] - pd[1]).reshape(1, 1, 1, ow)
    gy = (off[:, :, :, :, 0] + ys.to(x.dtype)) / (h - 1) * 2 - 1  # (n, G, kh, kw, oh, ow)
    gx = (off[:, :, :, :, 1] + xs.to(x.dtype)) / (wd - 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1).reshape(n, offset_group, kh * kw * oh, ow, 2)
    per = c // offset_group
    cols: list[Tensor] = []
    for g in range(offset_group):
        cols.append(F.grid_sample(x[:, g * per : (g + 1) * per], grid[:, g], "bilinear", "zeros", True))
    sampled = torch.stack(cols, dim=1).reshape(n, offset_group, per, kh * kw, oh * ow)
    if mask is not None:
        sampled = sampled * mask.reshape(n, offset_group, 1, kh * kw, oh * ow)
    sampled = sampled.reshape(n, group, (c // group) * kh * kw, oh * ow)
    oc = w.shape[0]
    y = torch.matmul(w.reshape(1, group, oc // group, -1), sampled).reshape(n, oc, oh, ow)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y
