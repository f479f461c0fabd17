"""tf2onnx handlers crossgraph replaces: TF ops tf2onnx translates wrongly when a dim is dynamic.

A handler here takes the place of tf2onnx's own for one TF op (registered at a
newer ONNX version than tf2onnx's, so it is the one chosen at
:data:`~.convert.TF2ONNX_OPSET`). :func:`install` registers them once per process.
A handler that cannot translate a node raises; tf2onnx then keeps the TF op, and
the front end reports it as unsupported.

Handlers, keyed by TF op name (:data:`HANDLERS`):

    ExtractImagePatches (``tf.image.extract_patches``): tf2onnx multiplies the
        static batch dim (-1 when dynamic) into its Reshape targets (a ``-3`` dim
        onnxruntime refuses). Here every patch is gathered by a convolution with an
        identity kernel over each channel plane, with Reshape targets of ``-1``,
        ``0`` (copy) and run-time sizes, so any dim but the channels may be dynamic
        (and the spatial ones of a dilated ``SAME`` extraction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: The ONNX version each handler is registered at (above tf2onnx's own for the op).
HANDLER_VERSION = 13

#: ``{TF op name: handler(ctx, node, **kwargs)}``.
HANDLERS: dict[str, Callable[..., None]] = {}


def handler(tf_op: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated function as crossgraph's tf2onnx handler of ``tf_op``."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        HANDLERS[tf_op] = function
        return function

    return register


def install() -> None:
    """Register :data:`HANDLERS` with tf2onnx (idempotent; they replace tf2onnx's from then on)."""
    from tf2onnx import constants
    from tf2onnx.handler import tf_op

    for name, function in HANDLERS.items():
        tf_op.register_handler(function, HANDLER_VERSION, [name], constants.ONNX_DOMAIN, {})


@handler("ExtractImagePatches")
def extract_image_patches(ctx: Any, node: Any, **_: Any) -> None:
    """``[N, H, W, C] -> [N, oh, ow, kh*kw*C]``, patch element ``(r, c, ch)`` at ``(r*kw + c)*C + ch``.

    Raises:
        ValueError: the channel count is not static (tf2onnx then keeps the TF op).
    """
    from tf2onnx import utils

    x = node.input[0]
    shape = ctx.get_shape(x)
    channels = shape[3] if shape is not None and len(shape) == 4 else -1
    if channels is None or channels < 0:
        raise ValueError("ExtractImagePatches needs a static channel count")
    _, kh, kw, _ = node.get_attr_value("ksizes")
    _, sh, sw, _ = node.get_attr_value("strides")
    _, rh, rw, _ = node.get_attr_value("rates")
    padding = node.get_attr_str("padding")
    dtype = ctx.get_dtype(x)
    k = kh * kw
    eye = np.eye(k, dtype=utils.map_onnx_to_numpy_type(dtype)).reshape(k, 1, kh, kw)

    def const(name: str, value: np.ndarray) -> str:
        return ctx.make_const(utils.make_name(f"{node.name}/{name}"), value).output[0]

    def op(op_type: str, inputs: list[str], **attr: Any) -> str:
        return ctx.make_node(op_type, inputs, attr=attr, name=utils.make_name(f"{node.name}/{op_type}")).output[0]

    channels_first = op("Transpose", [x], perm=[0, 3, 1, 2])
    planes = op("Reshape", [channels_first, const("planes", np.array([-1, 1, 0, 0], np.int64))])  # [N*C, 1, H, W]
    patches = op("Conv", [planes, const("identity", eye)], kernel_shape=[kh, kw], strides=[sh, sw],
                 dilations=[rh, rw], **_padding(padding, shape, (kh, kw), (sh, sw), (rh, rw)))  # [N*C, k, oh, ow]
    spatial = op("Slice", [op("Shape", [patches]), const("from", np.array([2], np.int64)),
                           const("to", np.array([4], np.int64))])
    split = op("Concat", [const("lead", np.array([-1, channels, k], np.int64)), spatial], axis=0)
    per_image = op("Reshape", [patches, split])  # [N, C, k, oh, ow]
    ordered = op("Transpose", [per_image], perm=[0, 3, 4, 2, 1])  # [N, oh, ow, k, C]
    result = ctx.make_node("Reshape", [ordered, const("merge", np.array([0, 0, 0, k * channels], np.int64))],
                           name=utils.make_name(node.name), dtypes=[dtype])
    ctx.replace_all_inputs(node.output[0], result.output[0])
    ctx.remove_node(node.name)


def _padding(padding: str, shape: Any, kernel: tuple[int, int], strides: tuple[int, int],
             rates: tuple[int, int]) -> dict[str, Any]:
    """The Conv padding attributes for TF ``padding`` on an NHWC input of ``shape``.

    ``SAME`` is ``auto_pad=SAME_UPPER`` (TF puts the odd pixel after), except with
    dilation, which onnxruntime does not take with ``auto_pad``: the pads are then
    computed here, from static spatial dims.

    Raises:
        ValueError: dilated ``SAME`` patches over dynamic spatial dims.
    """
    if padding != "SAME":
        return {"auto_pad": "VALID"}
    if rates == (1, 1):
        return {"auto_pad": "SAME_UPPER"}
    sizes = [shape[1], shape[2]] if shape is not None else [-1, -1]
    if any(d is None or d < 0 for d in sizes):
        raise ValueError("dilated SAME ExtractImagePatches needs static spatial dims")
    before, after = [], []
    for size, k, s, r in zip(sizes, kernel, strides, rates, strict=True):
        total = max((-(-size // s) - 1) * s + (k - 1) * r + 1 - size, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return {"pads": before + after}
