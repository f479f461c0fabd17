"""Rewrite rules, grouped by topic, and the two rule lists the pipeline runs.

Each topic file holds only what onnxscript's shipped rules lack (its docstring
says what that is) and ends with a ``<topic>_rules()`` set:

- :mod:`passes.rules.noop`: Pad of zeros, whole-tensor Slice, Tile by ones,
  Reshape to the same shape, Add/Sub of zeros and Mul/Div by ones tensors
- :mod:`passes.rules.shapes`: ``Gather(Shape(x), i)`` of known dims, constant ``GatherElements``
- :mod:`passes.rules.transpose`: Transpose sinking through elementwise and reductions
- :mod:`passes.rules.reshape`: Reshape/Squeeze/Unsqueeze/Flatten chains
- :mod:`passes.rules.affine`: per-channel scale/bias into Conv/MatMul, strict Gemm
- :mod:`passes.rules.activations`: GELU -> ``Gelu`` (opset >= 20)
- :mod:`passes.rules.normalization`: LayerNormalization (opset >= 17), guarded BatchNorm folds

Attention is not fused: the standard ``Attention`` op exists only from opset 23
(crossgraph's default is 21), and onnxscript's SDPA/MHA fusions emit
onnxruntime contrib ops, which an ONNX file for any runtime must not contain.
"""

from __future__ import annotations

from onnxscript.rewriter import RewriteRule
from onnxscript.rewriter.rules import common as shipped
from onnxscript.rewriter.rules.common import _basic_rules, _no_op

import ir
from passes.rules.activations import gelu_rules
from passes.rules.affine import affine_rules
from passes.rules.noop import noop_rules
from passes.rules.normalization import batchnorm_rules, layer_norm_rules
from passes.rules.reshape import reshape_rules
from passes.rules.shapes import shape_rules as _shape_rules
from passes.rules.transpose import transpose_rules

__all__ = ["cleanup_rules", "fusion_rules", "shape_rules"]


def cleanup_rules(model: ir.Model) -> list[RewriteRule]:
    """-O1 no-op removal: onnxscript's no-op rules plus :mod:`passes.rules.noop`."""
    return [
        *_no_op.rules.rules,  # x*1, x+0, x-0, x/1, Dropout(ratio 0 / inference)
        shipped.no_op_cast_rule,  # Cast to the same type
        shipped.no_op_expand_rule,  # Expand to the same shape
        shipped.no_op_transpose_rule,  # Transpose with the identity perm
        shipped.collapse_slice_rule,  # Slice of one whole axis
        shipped.collapse_slice2_rule,
        *noop_rules().rules,
    ]


def shape_rules(model: ir.Model) -> list[RewriteRule]:
    """-O1 shape-arithmetic folding (:mod:`passes.rules.shapes`)."""
    return list(_shape_rules().rules)


# onnxscript's SlicesSplit has two output nodes, and its matcher scans the whole
# graph for each candidate Slice: quadratic. passes.rules._dispatch limits the
# candidates to Slices with a sibling Slice, and above this size it is left out.
SLICES_SPLIT_MAX_NODES = 20_000


def _basic_rules_for(model: ir.Model) -> list[RewriteRule]:
    rules = _basic_rules.basic_optimization_rules().rules
    if sum(1 for _ in model.graph.all_nodes()) > SLICES_SPLIT_MAX_NODES:
        rules = [rule for rule in rules if rule.name != "SlicesSplit"]
    return list(rules)


def fusion_rules(model: ir.Model) -> list[RewriteRule]:
    """-O2 fusions, shipped and ours, chosen for the model's opset and size."""
    opset = ir.model_opset(model)
    rules = [
        *_basic_rules_for(model),  # Cast/Reshape/Transpose pairs, ...
        shipped.materialize_reshape_shape_rule,  # Reshape shape from inferred output shape
        *batchnorm_rules().rules,  # shipped BatchNorm folds, guarded
        shipped.fuse_pad_into_conv_rule,
        shipped.conv_affine_fusion_rule,  # scalar Mul/Add after Conv
        shipped.min_max_rule,  # Min/Max -> Clip
        shipped.max_min_rule,
        shipped.successive_relu_rule,
        shipped.successive_clip_rule,
        *transpose_rules().rules,
        *reshape_rules().rules,
        *affine_rules().rules,
    ]
    if opset >= 20:
        rules += gelu_rules().rules
    layer_norm = layer_norm_rules(opset)
    if layer_norm is not None:
        rules += layer_norm.rules
    return rules
