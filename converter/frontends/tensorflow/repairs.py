"""Repairs of tf2onnx output, and the check that every op left is an ONNX op.

tf2onnx does not stop at a TF op it cannot translate: it logs "Tensorflow op
[...] is not supported" and copies the TF op into the ONNX graph unchanged
(with TF 2.21 Keras' exact GELU gives an ``Erfc`` node, which ONNX lacks).
After conversion every node is checked against ``onnx.defs``; the ops that a
repair below rewrites into ONNX ops are fixed, and all the rest are reported
together in one :class:`~converter.errors.UnsupportedOpsError`.

Repairs, one per TF op (keyed by the TF op name, in :data:`REPAIRS`):

    Erfc(x) -> Sub(1, Erf(x))
    Expm1(x) -> Sub(Exp(x), 1)
    Bucketize(x, boundaries) -> ReduceSum(Cast(x[..., None] >= boundaries, int32), -1)
    ComplexAbs(z) -> Sqrt(ReduceSumSquare(z, axes=[0]))   (z: tf2onnx's [re, im] stack)
    Bitcast(x: float32 -> int32), read only through BitwiseAnd(., INT32_MIN)
        -> Where(x < 0 or 1/x < 0, INT32_MIN, 0)   (Keras' signbit, argmax of floats)

A repair may decline a node (return ``None``): it is then reported as unsupported.

tf2onnx also writes one attribute value that ONNX removed after opset 11:
``Resize(coordinate_transformation_mode="tf_half_pixel_for_nn")`` for TF's
half-pixel nearest resize (``tf.image.resize(method="nearest")``, Keras'
``Resizing``). :func:`fix_removed_resize_modes` rewrites it to the equal
``half_pixel`` form (onnxruntime still reads the old value; the spec and our
kernels do not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx.defs

import ir
from converter.errors import UnsupportedOpsError

#: Rewrites of TF ops tf2onnx leaves in the graph, keyed by TF op name.
REPAIRS = ir.OpRegistry("tf2onnx repairs", validate=r"[A-Z][A-Za-z0-9]*")

_ONNX_DOMAINS = ("", "ai.onnx")


@REPAIRS.register("Erfc")
def erfc(node: ir.Node) -> list[ir.Node]:
    """Erfc(x) -> Sub(1, Erf(x)), the one in ``x``'s dtype."""
    (x,) = node.inputs
    dtype = x.dtype.numpy() if x.dtype is not None else np.float32
    one = ir.node("Constant", [], attributes={"value": ir.tensor(np.array(1, dtype=dtype))}, name=f"{node.name}/one")
    erf = ir.node("Erf", [x], name=f"{node.name}/Erf")
    sub = ir.node("Sub", [one.outputs[0], erf.outputs[0]], name=node.name)
    return [one, erf, sub]


@REPAIRS.register("Expm1")
def expm1(node: ir.Node) -> list[ir.Node]:
    """Expm1(x) -> Sub(Exp(x), 1) (Keras' ``celu``; exact to float rounding of exp(x) near 1)."""
    (x,) = node.inputs
    one = _scalar(node, "one", 1, x.dtype.numpy() if x.dtype is not None else np.float32)
    exp = ir.node("Exp", [x], name=f"{node.name}/Exp")
    return [one, exp, ir.node("Sub", [exp.outputs[0], one.outputs[0]], name=node.name)]


@REPAIRS.register("Bucketize")
def bucketize(node: ir.Node) -> list[ir.Node]:
    """The bucket of each element: how many boundaries are <= it (TF's ``upper_bound``), as int32.

    Keras' ``Discretization`` layer. Integer inputs are compared as float32, as
    TensorFlow compares them with its float boundaries; doubles stay doubles.
    """
    (x,) = node.inputs
    dtype = np.float64 if x.dtype == ir.DataType.DOUBLE else np.float32
    boundaries = np.asarray(list(node.attributes["boundaries"].value), dtype=dtype)
    nodes = []
    if x.dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE):
        nodes.append(ir.node("Cast", [x], attributes={"to": ir.DataType.FLOAT}, name=f"{node.name}/Cast"))
        x = nodes[-1].outputs[0]
    last = _constant(node, "last_axis", np.array([-1], dtype=np.int64))
    edges = _constant(node, "boundaries", boundaries)
    column = ir.node("Unsqueeze", [x, last.outputs[0]], name=f"{node.name}/Unsqueeze")
    above = ir.node("GreaterOrEqual", [column.outputs[0], edges.outputs[0]], name=f"{node.name}/GreaterOrEqual")
    counts = ir.node("Cast", [above.outputs[0]], attributes={"to": ir.DataType.INT32}, name=f"{node.name}/Count")
    total = ir.node("ReduceSum", [counts.outputs[0], last.outputs[0]], attributes={"keepdims": 0}, name=node.name)
    return [*nodes, last, edges, column, above, counts, total]


def _constant(node: ir.Node, suffix: str, array: np.ndarray) -> ir.Node:
    return ir.node("Constant", [], attributes={"value": ir.tensor(array)}, name=f"{node.name}/{suffix}")


def _scalar(node: ir.Node, suffix: str, value: float, dtype: np.dtype) -> ir.Node:
    return _constant(node, suffix, np.array(value, dtype=dtype))


@REPAIRS.register("Bitcast")
def sign_bit_cast(node: ir.Node) -> list[ir.Node] | None:
    """The sign bit of a float32 reinterpreted as int32, where only that bit is read.

    Keras 3 (TF backend) computes ``signbit`` (used by ``keras.ops.argmax`` on
    floats, to order -0.0 below 0.0) as ``bitcast(x, int32) & INT32_MIN < 0``;
    ONNX has no BitCast before opset 26. When every use of the cast masks it with
    ``INT32_MIN``, the cast is replaced by an int32 carrying just the sign bit:
    ``x < 0``, or ``x == 0`` with ``1/x == -inf`` (a negative NaN's sign is lost).
    Any other bitcast is declined.
    """
    (x,) = node.inputs
    target = node.attributes.get("type")
    if x.dtype != ir.DataType.FLOAT or target is None or target.value != ir.DataType.INT32:
        return None
    if not node.outputs[0].uses() or not all(_masks_sign_bit(use.node) for use in node.outputs[0].uses()):
        return None
    zero = _scalar(node, "zero", 0, np.float32)
    below = ir.node("Less", [x, zero.outputs[0]], name=f"{node.name}/negative")
    inverse = ir.node("Reciprocal", [x], name=f"{node.name}/inverse")
    negative_zero = ir.node("Less", [inverse.outputs[0], zero.outputs[0]], name=f"{node.name}/negative_zero")
    sign = ir.node("Or", [below.outputs[0], negative_zero.outputs[0]], name=f"{node.name}/sign")
    bit = _scalar(node, "sign_bit", np.iinfo(np.int32).min, np.int32)
    none = _scalar(node, "no_bit", 0, np.int32)
    where = ir.node("Where", [sign.outputs[0], bit.outputs[0], none.outputs[0]], name=node.name)
    return [zero, below, inverse, negative_zero, sign, bit, none, where]


def _masks_sign_bit(node: ir.Node) -> bool:
    """Whether ``node`` is ``BitwiseAnd`` with the constant ``INT32_MIN`` (keeps only the sign bit)."""
    if node.op_type != "BitwiseAnd" or node.domain not in _ONNX_DOMAINS:
        return False
    masks = [ir.convenience.get_const_tensor(v) for v in node.inputs if v is not None]
    return any(m is not None and m.numpy().size == 1 and int(m.numpy().reshape(-1)[0]) == np.iinfo(np.int32).min
               for m in masks)


@REPAIRS.register("ComplexAbs")
def complex_abs(node: ir.Node) -> list[ir.Node] | None:
    """|z| of tf2onnx's FFT result, real and imaginary parts stacked on axis 0.

    tf2onnx lowers ``RFFT``/``FFT`` to real ops giving ``[2, ...]`` (real part,
    imaginary part) and converts a following ``ComplexAbs`` only when it can see
    that leading 2; with a dynamic batch the FFT's shape is unknown, its check
    fails and the TF node is left in the graph. A truly complex input (ONNX has no
    complex arithmetic) is declined.
    """
    (z,) = node.inputs
    if z.dtype is not None and z.dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.FLOAT16):
        return None
    axes = ir.node("Constant", [], attributes={"value": ir.tensor(np.array([0], dtype=np.int64))},
                   name=f"{node.name}/axes")
    squares = ir.node("ReduceSumSquare", [z, axes.outputs[0]], attributes={"keepdims": 0}, name=f"{node.name}/norm2")
    return [axes, squares, ir.node("Sqrt", [squares.outputs[0]], name=node.name)]


def is_onnx_op(node: ir.Node, opset: int) -> bool:
    """Whether ``node`` is an op of the default ONNX domain with a schema at ``opset``."""
    if node.domain not in _ONNX_DOMAINS:
        return False
    try:
        onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return False
    return True


def repair_and_check(
    model: ir.Model, opset: int, source_name: Callable[[str], str], logged: Sequence[tuple[str, str]] = ()
) -> int:
    """Repair what :data:`REPAIRS` can, then fail if any non-ONNX op remains.

    Args:
        model: tf2onnx's output, changed in place.
        opset: the opset tf2onnx converted to.
        source_name: maps a tf2onnx node name to the name reported to the user.
        logged: ``(op, TF node name)`` pairs tf2onnx reported as unsupported;
            those whose node it dropped are reported too, unless a node of the
            same op was repaired (tf2onnx merges identical nodes: two
            ``keras.ops.signbit(x)`` leave one ``Bitcast``).

    Returns:
        The number of nodes repaired.

    Raises:
        UnsupportedOpsError: listing every op left that ONNX does not define.
    """
    repaired = 0
    unsupported: list[tuple[str, str]] = []
    seen: set[str | None] = set()  # names of the non-ONNX nodes found in the graph
    fixed_ops: set[str] = set()
    for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
        if is_onnx_op(node, opset):
            continue
        seen.add(node.name)
        replacement = _repair(node)
        if replacement is not None:
            _replace(node, replacement)
            repaired += 1
            fixed_ops.add(node.op_type)
        else:
            unsupported.append((node.op_type, source_name(node.name or node.op_type)))
    unsupported += [(op, source_name(name)) for op, name in logged if name not in seen and op not in fixed_ops]
    if unsupported:
        raise UnsupportedOpsError("TensorFlow", unsupported)
    return repaired


def _repair(node: ir.Node) -> list[ir.Node] | None:
    """The nodes replacing ``node`` by its :data:`REPAIRS` entry, or ``None`` (no entry, or declined)."""
    if node.domain not in _ONNX_DOMAINS or node.op_type not in REPAIRS:
        return None
    return REPAIRS.lookup(node.op_type)(node)


def _replace(node: ir.Node, new_nodes: list[ir.Node]) -> None:
    """Put ``new_nodes`` in place of ``node``; the last one's outputs replace its outputs."""
    ir.convenience.replace_nodes_and_values(
        node.graph, node, [node], new_nodes, list(node.outputs), list(new_nodes[-1].outputs)
    )


#: ``tf_half_pixel_for_nn`` indexes ``nearest_mode((i + 0.5) / scale)``; ``half_pixel`` is that
#: minus 0.5, so: floor(h + 0.5) == round_prefer_ceil(h) and round_prefer_floor(h + 0.5) == ceil(h).
_HALF_PIXEL_NEAREST = {"floor": "round_prefer_ceil", "round_prefer_floor": "ceil"}


def fix_removed_resize_modes(model: ir.Model) -> int:
    """Rewrite ``tf_half_pixel_for_nn`` Resize nodes to ``half_pixel`` with the matching ``nearest_mode``.

    Returns:
        The number of nodes rewritten (a ``nearest_mode`` with no equal form is left).
    """
    fixed = 0
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.op_type != "Resize" or node.domain not in _ONNX_DOMAINS:
            continue
        mode = node.attributes.get("coordinate_transformation_mode")
        if mode is None or mode.value != "tf_half_pixel_for_nn":
            continue
        nearest = node.attributes.get("nearest_mode")
        rounding = _HALF_PIXEL_NEAREST.get(nearest.value if nearest is not None else "round_prefer_floor")
        if rounding is None:
            continue
        node.attributes["coordinate_transformation_mode"] = ir.AttrString("coordinate_transformation_mode", "half_pixel")
        node.attributes["nearest_mode"] = ir.AttrString("nearest_mode", rounding)
        fixed += 1
    return fixed
