"""Direct aten calls for the hot ops of the TorchScript back end.

A kernel of ``kernels/torch`` takes ONNX attributes and resolves them on every
call (default strides, ``auto_pad``, asymmetric pads, rank dispatch). Where the
generator already knows what the kernel would decide (static attributes, the
rank of the input, the dtype, constant shapes), it emits the one torch call the
kernel would end in instead, with the arguments precomputed:

    r0 = torch.conv2d(x, self.w_conv1_w, self.w_conv1_b, [2, 2], [3, 3], [1, 1], 1)

Each emitter gets the writer and the node and returns ``(expression, rank)`` for
the node's first output, or ``None`` to fall back to the kernel call; the writer
only asks when every other output of the node is unused. Every emitter computes
exactly what the registered kernel computes on the cases it accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ir

if TYPE_CHECKING:
    from converter.backends.torchscript_codegen import Writer

Emitted = tuple[str, int | None] | None
DIRECT: dict[str, Callable[[Writer, ir.Node], Emitted]] = {}
#: ONNX float dtypes for which ``a + b`` etc. are the ONNX ops exactly.
_FLOATS = (ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.FLOAT16, ir.DataType.BFLOAT16)
_SIGNED = (ir.DataType.INT8, ir.DataType.INT16, ir.DataType.INT32, ir.DataType.INT64, ir.DataType.UINT8)


def direct(*ops: str) -> Callable:
    """Registers an emitter for ``ops`` in :data:`DIRECT`."""

    def register(fn: Callable[[Writer, ir.Node], Emitted]) -> Callable[[Writer, ir.Node], Emitted]:
        for op in ops:
            DIRECT[op] = fn
        return fn

    return register


def _spatial(w: Writer, node: ir.Node, n: int) -> tuple[list[int], list[int], list[int]] | None:
    """Strides, symmetric paddings and dilations, or ``None`` when only the kernel can pad."""
    attrs = w.attributes(node)
    strides = attrs.get("strides") or [1] * n
    dilations = attrs.get("dilations") or [1] * n
    auto_pad = attrs.get("auto_pad", "NOTSET")
    pads = attrs.get("pads") or [0] * (2 * n)
    if auto_pad == "VALID":
        pads = [0] * (2 * n)
    elif auto_pad != "NOTSET" or len(pads) != 2 * n or pads[:n] != pads[n:]:
        return None
    return list(strides), list(pads[:n]), list(dilations)


# --- convolution, pooling, normalization ------------------------------------------


@direct("Conv")
def _conv(w: Writer, node: ir.Node) -> Emitted:
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    return conv_call(w, node, w.arg(node.inputs[1], conv_weight=True), w.arg(bias))


def conv_call(w: Writer, node: ir.Node, weight: str, bias: str) -> Emitted:
    """The Conv's convolution with the given weight and bias expressions (2-D: ``kernels.torch.nn.conv2d``)."""
    kernel = w.constant(node.inputs[1])
    if kernel is None or not kernel.is_floating_point() or not 3 <= kernel.dim() <= 5:
        return None
    n = kernel.dim() - 2
    spatial = _spatial(w, node, n)
    if spatial is None:
        return None
    from kernels.torch.nn import conv2d

    strides, padding, dilations = spatial
    group = w.attributes(node).get("group", 1)
    # torch's freezing passes fold and prepack aten::conv<n>d themselves.
    fn = w.kernel(conv2d) if n == 2 and not w.freeze else f"torch.conv{n}d"
    return f"{fn}({w.arg(node.inputs[0])}, {weight}, {bias}, {strides}, {padding}, {dilations}, {group})", n + 2


def _pool(w: Writer, node: ir.Node) -> tuple[int, list[int], list[int], list[int], list[int]] | None:
    kernel = w.attributes(node).get("kernel_shape")
    if not kernel or not 1 <= len(kernel) <= 3 or w.dtype(node.inputs[0]) not in _FLOATS:
        return None
    spatial = _spatial(w, node, len(kernel))
    if spatial is None or any(2 * p > k for p, k in zip(spatial[1], kernel, strict=True)):
        return None  # torch pads at most half a window; the kernel pads explicitly
    return len(kernel), list(kernel), *spatial


@direct("MaxPool")
def _max_pool(w: Writer, node: ir.Node) -> Emitted:
    setup = _pool(w, node)
    if setup is None:
        return None
    n, kernel, strides, padding, dilations = setup
    ceil = bool(w.attributes(node).get("ceil_mode", 0))
    x = w.arg(node.inputs[0])
    return f"torch.max_pool{n}d({x}, {kernel}, {strides}, {padding}, {dilations}, {ceil})", n + 2


@direct("AveragePool")
def _average_pool(w: Writer, node: ir.Node) -> Emitted:
    setup = _pool(w, node)
    attrs = w.attributes(node)
    if setup is None or attrs.get("ceil_mode", 0) or any(d != 1 for d in setup[4]):
        return None  # ceil_mode: torch's divisor of the overhanging window differs
    n, kernel, strides, padding, _ = setup
    include = bool(attrs.get("count_include_pad", 0))
    x = w.arg(node.inputs[0])
    return f"F.avg_pool{n}d({x}, {kernel}, {strides}, {padding}, False, {include})", n + 2


@direct("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(w: Writer, node: ir.Node) -> Emitted:
    rank = w.rank(node.inputs[0])
    if rank is None or rank < 3:
        return None
    if node.op_type == "GlobalAveragePool":
        # Channels-first, so that every channel is summed in the same order (kernels.torch.nn.global_average_pool).
        return f"torch.mean({w.arg(node.inputs[0])}.contiguous(), {list(range(2, rank))}, keepdim=True)", rank
    return f"torch.amax({w.arg(node.inputs[0])}, {list(range(2, rank))}, keepdim=True)", rank


@direct("BatchNormalization")
def _batch_norm(w: Writer, node: ir.Node) -> Emitted:
    attrs = w.attributes(node)
    params = node.inputs[1:5]
    if attrs.get("training_mode", 0) or len(params) != 4 or w.dtype(node.inputs[0]) != ir.DataType.FLOAT:
        return None
    if not attrs.get("spatial", 1):  # before opset 9, parameters per channel and position: the kernel
        return None
    if any(w.dtype(p) != ir.DataType.FLOAT for p in params):
        return None
    eps = attrs.get("epsilon", 1e-5)
    x, scale, b, mean, var = (w.arg(v) for v in node.inputs[:5])
    return f"torch.batch_norm({x}, {scale}, {b}, {mean}, {var}, False, 0.0, {eps!r}, False)", w.rank(node.inputs[0])


@direct("LayerNormalization")
def _layer_norm(w: Writer, node: ir.Node) -> Emitted:
    """``torch.layer_norm`` over the trailing dims that a constant scale spans (float32, float32 stash)."""
    attrs = w.attributes(node)
    scale = w.constant(node.inputs[1])
    rank = w.rank(node.inputs[0])
    if scale is None or rank is None or w.dtype(node.inputs[0]) != ir.DataType.FLOAT or attrs.get("stash_type", 1) != 1:
        return None
    shape = node.inputs[0].shape
    trailing = list(shape)[rank - scale.dim() :] if shape is not None else None
    if scale.dim() != rank - attrs.get("axis", -1) % rank or trailing != list(scale.shape):
        return None  # a scale that broadcasts over the normalized dims (or unknown dims): the kernel
    if w.dtype(node.inputs[1]) != ir.DataType.FLOAT:
        return None
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    eps = attrs.get("epsilon", 1e-5)
    x, s, b = w.arg(node.inputs[0]), w.arg(node.inputs[1]), w.arg(bias)
    return f"torch.layer_norm({x}, {list(scale.shape)}, {s}, {b}, {eps!r})", rank


@direct("Gemm")
def _gemm(w: Writer, node: ir.Node) -> Emitted:
    """``F.linear`` for the fully connected layer's form: ``a @ b.T + c`` with a vector ``c``."""
    attrs = w.attributes(node)
    if attrs.get("transA", 0) or not attrs.get("transB", 0) or attrs.get("alpha", 1.0) != 1.0:
        return None
    c = node.inputs[2] if len(node.inputs) > 2 else None
    if c is not None and (attrs.get("beta", 1.0) != 1.0 or w.rank(c) != 1):
        return None
    if any(w.dtype(v) != ir.DataType.FLOAT for v in node.inputs if v is not None):
        return None
    return f"F.linear({w.arg(node.inputs[0])}, {w.arg(node.inputs[1])}, {w.arg(c)})", 2


@direct("MatMul")
def _mat_mul(w: Writer, node: ir.Node) -> Emitted:
    return f"torch.matmul({w.arg(node.inputs[0])}, {w.arg(node.inputs[1])})", None


# --- elementwise -----------------------------------------------------------------


@direct("Relu")
def _relu(w: Writer, node: ir.Node) -> Emitted:
    if w.dtype(node.inputs[0]) not in (*_FLOATS, *_SIGNED):
        return None
    return f"torch.relu({w.arg(node.inputs[0])})", w.rank(node.inputs[0])


@direct("Sigmoid", "Tanh")
def _float_unary(w: Writer, node: ir.Node) -> Emitted:
    if w.dtype(node.inputs[0]) not in _FLOATS:
        return None
    return f"torch.{node.op_type.lower()}({w.arg(node.inputs[0])})", w.rank(node.inputs[0])


_OPERATORS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Sum": "+"}


@direct("Add", "Sub", "Mul", "Div", "Sum")
def _arithmetic(w: Writer, node: ir.Node) -> Emitted:
    """``a + b`` for floats (and ``+ - *`` for signed integers, where torch wraps as ONNX does)."""
    if w.opset < 7 or not node.inputs:  # older versions take a ``broadcast`` attribute
        return None
    dtypes = {w.dtype(v) for v in node.inputs}
    allowed = _FLOATS if node.op_type == "Div" else (*_FLOATS, *_SIGNED)
    if len(dtypes) != 1 or dtypes.pop() not in allowed:
        return None
    ranks = [w.rank(v) for v in node.inputs]
    rank = None if None in ranks else max(ranks)  # type: ignore[type-var]
    return f" {_OPERATORS[node.op_type]} ".join(w.arg(v) for v in node.inputs), rank


@direct("Softmax")
def _softmax(w: Writer, node: ir.Node) -> Emitted:
    rank = w.rank(node.inputs[0])
    axis = w.attributes(node).get("axis", -1 if w.opset >= 13 else 1)
    if w.dtype(node.inputs[0]) not in _FLOATS or (w.opset < 13 and (rank is None or axis % rank != rank - 1)):
        return None  # before opset 13 Softmax flattens to 2-D at ``axis``: the same only at the last axis
    return f"torch.softmax({w.arg(node.inputs[0])}, {axis})", rank


# --- shapes -----------------------------------------------------------------------


@direct("Concat")
def _concat(w: Writer, node: ir.Node) -> Emitted:
    if w.opset < 4:
        return None
    axis = w.attributes(node).get("axis")
    if axis is None:
        return None
    return f"torch.cat([{', '.join(w.arg(v) for v in node.inputs)}], {axis})", w.rank(node.inputs[0])


@direct("Reshape")
def _reshape(w: Writer, node: ir.Node) -> Emitted:
    shape = w.constant(node.inputs[1]) if w.opset >= 5 else None
    if shape is None:
        return None
    dims: list[Any] = shape.reshape(-1).tolist()
    if 0 in dims and not w.attributes(node).get("allowzero", 0):
        dims = [f"{w.arg(node.inputs[0])}.shape[{i}]" if d == 0 else str(d) for i, d in enumerate(dims)]
        return f"{w.arg(node.inputs[0])}.reshape([{', '.join(dims)}])", len(dims)
    return f"{w.arg(node.inputs[0])}.reshape({dims})", len(dims)


@direct("Transpose")
def _transpose(w: Writer, node: ir.Node) -> Emitted:
    perm = w.attributes(node).get("perm")
    if not perm:
        return None
    return f"{w.arg(node.inputs[0])}.permute({list(perm)})", len(perm)


@direct("Flatten")
def _flatten(w: Writer, node: ir.Node) -> Emitted:
    rank = w.rank(node.inputs[0])
    if rank is None or rank < 2 or w.attributes(node).get("axis", 1) != 1:
        return None
    return f"torch.flatten({w.arg(node.inputs[0])}, 1)", 2


@direct("Dropout", "Identity")
def _pass_through(w: Writer, node: ir.Node) -> Emitted:
    """Inference Dropout (as the kernel: training is not modelled) and Identity return their input."""
    return w.arg(node.inputs[0]), w.rank(node.inputs[0])


# --- Conv + BatchNormalization ------------------------------------------------------


def fold_batch_norm(w: Writer, conv: ir.Node, bn: ir.Node) -> tuple[Any, Any] | None:
    """Conv weights and bias with the inference BatchNormalization after it folded in.

    ``w' = w * s / sqrt(var + eps)`` per output channel and ``b' = (b - mean) * s /
    sqrt(var + eps) + beta``, computed in float64 and rounded once to float32. Returns
    ``None`` when a parameter is not a float32 constant or BN is not in inference mode.
    """
    import torch

    weight = w.constant(conv.inputs[1])
    bias = w.constant(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] is not None else None
    params = [w.constant(v) for v in bn.inputs[1:5]]
    tensors = [weight, *params] + ([bias] if bias is not None else [])
    if w.attributes(bn).get("training_mode", 0) or len(params) != 4:
        return None
    if any(t is None or t.dtype != torch.float32 for t in tensors):
        return None
    scale, beta, mean, var = (t.double().reshape(-1) for t in params)
    k = scale / torch.sqrt(var + w.attributes(bn).get("epsilon", 1e-5))
    channels = weight.shape[0]
    if k.numel() != channels:
        return None
    b = bias.double() if bias is not None else torch.zeros(channels, dtype=torch.float64)
    new_w = weight.double() * k.reshape([-1] + [1] * (weight.dim() - 1))
    return new_w.float().contiguous(), ((b - mean) * k + beta).float()
