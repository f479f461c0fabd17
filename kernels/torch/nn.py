"""Matrix products, convolutions and pooling.

ONNX pads are ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` and may be
asymmetric; torch takes one symmetric padding per axis, so asymmetric pads are
applied explicitly with ``F.pad`` first. ``auto_pad`` SAME_UPPER / SAME_LOWER put
the odd extra pad at the end / the beginning.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import int_bounds


@TORCH.register("MatMul", since=1)
def mat_mul(a: Tensor, b: Tensor) -> Tensor:
    return torch.matmul(a, b)


@TORCH.register("MatMulInteger", since=10)
def mat_mul_integer(a: Tensor, b: Tensor, a_zero_point: Tensor | None = None, b_zero_point: Tensor | None = None) -> Tensor:
    a64 = a.to(torch.int64)
    b64 = b.to(torch.int64)
    if a_zero_point is not None:
        a64 = a64 - a_zero_point.to(torch.int64).reshape(-1, 1) if a_zero_point.numel() > 1 else a64 - a_zero_point.to(torch.int64)
    if b_zero_point is not None:
        b64 = b64 - b_zero_point.to(torch.int64)
    return torch.matmul(a64, b64).to(torch.int32)


@TORCH.register("Gemm", since=7)
def gemm(a: Tensor, b: Tensor, c: Tensor | None = None, alpha: float = 1.0, beta: float = 1.0, transA: int = 0, transB: int = 0) -> Tensor:  # noqa: N803
    a = a.t() if transA else a
    b = b.t() if transB else b
    y = torch.matmul(a, b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y.to(a.dtype)


@TORCH.register("Einsum", since=12)
def einsum(inputs: list[Tensor], equation: str = "") -> Tensor:
    return torch.einsum(equation.replace(" ", ""), inputs)


# --- padding arithmetic ----------------------------------------------------------


def _spatial_pads(
    spatial: list[int],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int] | None,
    auto_pad: str,
) -> list[int]:
    """ONNX-ordered pads ``[begins..., ends...]`` after resolving ``auto_pad``."""
    n = len(spatial)
    if auto_pad == "SAME_UPPER" or auto_pad == "SAME_LOWER":
        begins: list[int] = []
        ends: list[int] = []
        for i in range(n):
            out = (spatial[i] + strides[i] - 1) // strides[i]
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i], 0)
            small = total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else total - small)
            ends.append(total - small if auto_pad == "SAME_UPPER" else small)
        return begins + ends
    if auto_pad == "VALID" or pads is None or len(pads) == 0:
        return [0] * (2 * n)
    return pads


def _torch_pad_order(pads: list[int]) -> list[int]:
    """ONNX pads to F.pad's order: last axis first, (begin, end) pairs."""
    n = len(pads) // 2
    out: list[int] = []
    for i in range(n - 1, -1, -1):
        out += [pads[i], pads[i + n]]
    return out


def _split_pads(pads: list[int]) -> tuple[list[int], list[int]]:
    """Symmetric part for torch's ``padding`` and the rest for an explicit F.pad."""
    n = len(pads) // 2
    sym = [min(pads[i], pads[i + n]) for i in range(n)]
    rest = [pads[i] - sym[i] for i in range(n)] + [pads[i + n] - sym[i] for i in range(n)]
    return sym, rest


def _defaults(values: list[int] | None, n: int, fill: int) -> list[int]:
    return [fill] * n if values is None or len(values) == 0 else values


# --- convolution -----------------------------------------------------------------


@TORCH.register("Conv", since=1)
def conv(
    x: Tensor,
    w: Tensor,
    b: Tensor | None = None,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    n = x.dim() - 2
    kernel = list(w.shape[2:])
    st = _defaults(strides, n, 1)
    dl = _defaults(dilations, n, 1)
    p = _spatial_pads(list(x.shape[2:]), kernel, st, dl, pads, auto_pad)
    sym, rest = _split_pads(p)
    if any([r != 0 for r in rest]):
        x = F.pad(x, _torch_pad_order(rest))
    if n == 1:
        return F.conv1d(x, w, b, st, sym, dl, group)
    if n == 2:
        return F.conv2d(x, w, b, st, sym, dl, group)
    return F.conv3d(x, w, b, st, sym, dl, group)


def conv2d(
    x: Tensor, w: Tensor, b: Tensor | None, strides: list[int], padding: list[int], dilations: list[int], group: int
) -> Tensor:
    """A 2-D convolution with resolved arguments (symmetric ``padding``), as the TorchScript back end emits it.

    The back end stores 2-D weights channels-last and this makes the input
    channels-last too, so activations stay channels-last from one convolution to
    the next (a no-op ``contiguous`` each time). On the CPU, float32 calls oneDNN
    directly: ``F.conv2d`` sends 1x1 stride-1 convolutions at batch < 16 on one
    thread to a slower matmul path. Values do not depend on the layout, except the
    summation order of reductions: see :func:`global_average_pool`.
    """
    x = x.contiguous(memory_format=torch.channels_last)
    if x.device.type == "cpu" and x.dtype == torch.float32 and w.dtype == torch.float32:
        return torch.mkldnn_convolution(x, w, b, padding, strides, dilations, group)
    return F.conv2d(x, w, b, strides, padding, dilations, group)


@TORCH.register("ConvTranspose", since=1)
def conv_transpose(
    x: Tensor,
    w: Tensor,
    b: Tensor | None = None,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    output_padding: list[int] | None = None,
    output_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    n = x.dim() - 2
    kernel = list(w.shape[2:])
    st = _defaults(strides, n, 1)
    dl = _defaults(dilations, n, 1)
    op = _defaults(output_padding, n, 0)
    spatial = list(x.shape[2:])
    p = _defaults(pads, 2 * n, 0)
    if (output_shape is not None and len(output_shape) > 0) or auto_pad == "SAME_UPPER" or auto_pad == "SAME_LOWER":
        target = [spatial[i] * st[i] for i in range(n)]
        if output_shape is not None and len(output_shape) > 0:
            target = output_shape[-n:]
        begins: list[int] = []
        ends: list[int] = []
        for i in range(n):
            total = st[i] * (spatial[i] - 1) + op[i] + (kernel[i] - 1) * dl[i] + 1 - target[i]
            half = total // 2
            begins.append(half if auto_pad == "SAME_UPPER" else total - half)
            ends.append(total - half if auto_pad == "SAME_UPPER" else half)
        p = begins + ends
    elif auto_pad == "VALID":
        p = [0] * (2 * n)
    zeros = [0] * n
    if n == 1:
        y = F.conv_transpose1d(x, w, None, st, zeros, zeros, group, dl)
    elif n == 2:
        y = F.conv_transpose2d(x, w, None, st, zeros, zeros, group, dl)
    else:
        y = F.conv_transpose3d(x, w, None, st, zeros, zeros, group, dl)
    # output_padding adds zeros at the end; pads then crop (negative pads grow).
    crop = [-p[i] for i in range(n)] + [op[i] - p[i + n] for i in range(n)]
    y = F.pad(y, _torch_pad_order(crop))
    if b is not None:
        y = y + b.reshape([1, -1] + [1] * n)
    return y


# --- pooling ---------------------------------------------------------------------


def _pool_setup(
    x: Tensor, kernel_shape: list[int], strides: list[int] | None, dilations: list[int] | None, pads: list[int] | None, auto_pad: str
) -> tuple[list[int], list[int], list[int]]:
    n = x.dim() - 2
    st = _defaults(strides, n, 1)
    dl = _defaults(dilations, n, 1)
    return st, dl, _spatial_pads(list(x.shape[2:]), kernel_shape, st, dl, pads, auto_pad)


def _max_pool_raw(x: Tensor, k: list[int], st: list[int], pad: list[int], dl: list[int], ceil: bool) -> tuple[Tensor, Tensor]:
    n = x.dim() - 2
    if n == 1:
        return F.max_pool1d_with_indices(x, k, st, pad, dl, ceil, True)
    if n == 2:
        return F.max_pool2d_with_indices(x, k, st, pad, dl, ceil, True)
    return F.max_pool3d_with_indices(x, k, st, pad, dl, ceil, True)


@TORCH.register("MaxPool", since=1)
def max_pool(
    x: Tensor,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    storage_order: int = 0,
    strides: list[int] | None = None,
) -> tuple[Tensor, Tensor]:
    assert kernel_shape is not None
    st, dl, p = _pool_setup(x, kernel_shape, strides, dilations, pads, auto_pad)
    sym, rest = _split_pads(p)
    xp = x
    if any([r != 0 for r in rest]) or any([2 * sym[i] > kernel_shape[i] for i in range(len(sym))]):
        low = float("-inf") if x.is_floating_point() else float(int_bounds(x.dtype)[0])
        xp = F.pad(x, _torch_pad_order(p), value=low)
        sym = [0] * len(sym)
    src = xp if x.is_floating_point() else xp.to(torch.float64)
    y, idx = _max_pool_raw(src, kernel_shape, st, sym, dl, ceil_mode != 0)
    return y.to(x.dtype), _flat_indices(x, idx, storage_order)


def _flat_indices(x: Tensor, idx: Tensor, storage_order: int) -> Tensor:
    """torch's per-plane argmax positions as ONNX's indices into the whole tensor."""
    spatial: list[int] = list(x.shape[2:])
    plane = 1
    for d in spatial:
        plane *= d
    if storage_order == 1 and len(spatial) == 2:
        h, w = spatial[0], spatial[1]
        idx = (idx % w) * h + idx // w
    nc = torch.arange(x.shape[0] * x.shape[1], device=x.device).reshape([x.shape[0], x.shape[1]] + [1] * len(spatial))
    return idx + nc * plane


def _avg_pool_raw(x: Tensor, k: list[int], st: list[int], ceil: bool) -> Tensor:
    n = x.dim() - 2
    if n == 1:
        return F.avg_pool1d(x, k, st, 0, ceil, True)
    if n == 2:
        return F.avg_pool2d(x, k, st, 0, ceil, True)
    return F.avg_pool3d(x, k, st, 0, ceil, True)


@TORCH.register("AveragePool", since=1)
def average_pool(
    x: Tensor,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    count_include_pad: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    assert kernel_shape is not None
    st, dl, p = _pool_setup(x, kernel_shape, strides, dilations, pads, auto_pad)
    order = _torch_pad_order(p)
    xp = F.pad(x, order)
    # Averages as the ratio of two window sums: values over counted positions.
    ones = torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype, device=x.device)
    mask = F.pad(ones, order, value=1.0 if count_include_pad else 0.0)
    if ceil_mode != 0:  # windows past the end count only real (and pad) positions
        tail = _torch_pad_order(_ceil_tail(list(x.shape[2:]), kernel_shape, st, dl, p))
        xp = F.pad(xp, tail)
        mask = F.pad(mask, tail)
    if any([d != 1 for d in dl]):
        return _dilated_window_sum(xp, kernel_shape, st, dl) / _dilated_window_sum(mask, kernel_shape, st, dl)
    return _avg_pool_raw(xp, kernel_shape, st, False) / _avg_pool_raw(mask, kernel_shape, st, False)


def _ceil_tail(spatial: list[int], k: list[int], st: list[int], dl: list[int], pads: list[int]) -> list[int]:
    """ONNX-ordered extra end pads that make floor-mode pooling give ceil_mode's output size.

    As ONNX (and torch) define it, the last window must start inside the input
    or its begin pad; windows starting on the end pad are dropped.
    """
    n = len(spatial)
    tail = [0] * (2 * n)
    for i in range(n):
        span = (k[i] - 1) * dl[i] + 1
        padded = spatial[i] + pads[i] + pads[i + n]
        out = -((span - padded) // st[i]) + 1  # ceil((padded - span) / stride) + 1
        if (out - 1) * st[i] >= spatial[i] + pads[i]:
            out -= 1
        tail[i + n] = max((out - 1) * st[i] + span - padded, 0)
    return tail


def _dilated_window_sum(x: Tensor, k: list[int], st: list[int], dl: list[int]) -> Tensor:
    out = x
    for i in range(len(k)):
        axis = 2 + i
        span = (k[i] - 1) * dl[i] + 1
        windows = out.unfold(axis, span, st[i])  # [..., out_i, ..., span]
        taps = torch.arange(0, span, dl[i], device=x.device)
        out = torch.index_select(windows, windows.dim() - 1, taps).sum(-1)
    return out


@TORCH.register("LpPool", since=11)
def lp_pool(
    x: Tensor,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    p: int = 2,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> Tensor:
    assert kernel_shape is not None
    st, dl, pd = _pool_setup(x, kernel_shape, strides, dilations, pads, auto_pad)
    xp = F.pad(torch.pow(torch.abs(x), float(p)), _torch_pad_order(pd))
    return torch.pow(_dilated_window_sum(xp, kernel_shape, st, dl), 1.0 / float(p))


@TORCH.register("GlobalAveragePool", since=1)
def global_average_pool(x: Tensor) -> Tensor:
    """The mean of each channel, summed in the same order for every channel.

    On a channels-last input torch sums the channels of a vector lane and the
    remaining channels in different orders, so channels holding equal values can
    get means one ulp apart; a Softmax over tied logits of large magnitude (the
    onnx light zoo's constant weights) then turns one ulp into a one-hot result.
    Averaging in channels-first layout keeps ties exact, as onnxruntime does.
    """
    return torch.mean(x.contiguous(), list(range(2, x.dim())), keepdim=True)


@TORCH.register("GlobalMaxPool", since=1)
def global_max_pool(x: Tensor) -> Tensor:
    return torch.amax(x, list(range(2, x.dim())), keepdim=True)


@TORCH.register("GlobalLpPool", since=2)
def global_lp_pool(x: Tensor, p: int = 2) -> Tensor:
    s = torch.sum(torch.pow(torch.abs(x), float(p)), list(range(2, x.dim())), keepdim=True)
    return torch.pow(s, 1.0 / float(p))


@TORCH.register("LRN", since=1)
def lrn(x: Tensor, alpha: float = 0.0001, beta: float = 0.75, bias: float = 1.0, size: int = 1) -> Tensor:
    sq = (x * x).unsqueeze(0)
    before = (size - 1) // 2
    after = size - 1 - before
    pad = [0, 0] * (x.dim() - 2) + [before, after]
    summed = F.pad(sq, pad).unfold(2, size, 1).sum(-1).squeeze(0)
    return x / torch.pow(bias + alpha / size * summed, beta)


@TORCH.register("Det", since=11)
def det(X: Tensor) -> Tensor:  # noqa: N803
    return torch.linalg.det(X)
