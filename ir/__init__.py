"""crossgraph's IR: onnx_ir's graph classes, plus what crossgraph adds.

The graph data structure is onnx_ir (``Model``, ``Graph``, ``Node``, ``Value``,
``Tensor``, ``Shape``, ``SymbolicDim``, ``DataType``, ...). Every public name of
onnx_ir is re-exported here unchanged, so code says ``import ir`` and ``ir.Node``.

What crossgraph adds, and onnx_ir lacks:

- :mod:`ir.opsets`: the default opset and :class:`OpRegistry`, the per-op,
  per-version (and per-device) tables that kernels and translations register in;
  lookup takes the newest registration at or below the model's opset.
- :mod:`ir.provenance`: the source framework's name of each node
  (:func:`source_name` / :func:`set_source_name`), kept in node metadata so it
  survives an ONNX round trip.
- :mod:`ir.symbols`: naming and binding symbolic dims.
- :mod:`ir.verifier`: :func:`verify` checks a model's structure against ``onnx.defs``.

Example:
    >>> import ir
    >>> model = ir.from_onnx_text('''
    ...     <ir_version: 10, opset_import: ["" : 21]>
    ...     g (float[N] x) => (float[N] y) { y = Relu(x) }
    ... ''')
    >>> ir.verify(model)
    >>> [n.op_type for n in model.graph]
    ['Relu']
"""

from __future__ import annotations

from onnx_ir import *  # noqa: F403  (re-export onnx_ir's public names unchanged)
from onnx_ir import __all__ as _onnx_ir_all
from onnx_ir import (
    convenience,
    external_data,
    passes,
    schemas,
    serde,
    tape,
    traversal,
)

from ir.opsets import (
    DEFAULT_OPSET,
    OpRegistry,
    model_opset,
    node_opset,
    op_key,
    op_schema,
    split_op_key,
)
from ir.provenance import copy_source_name, set_source_name, source_name
from ir.symbols import bind_symbols, default_symbol, parse_shape, symbolic_dims
from ir.verifier import VerificationError, verify

__all__ = [
    *_onnx_ir_all,
    "convenience",
    "external_data",
    "passes",
    "schemas",
    "serde",
    "tape",
    "traversal",
    "DEFAULT_OPSET",
    "OpRegistry",
    "model_opset",
    "node_opset",
    "op_key",
    "op_schema",
    "split_op_key",
    "source_name",
    "set_source_name",
    "copy_source_name",
    "default_symbol",
    "parse_shape",
    "bind_symbols",
    "symbolic_dims",
    "verify",
    "VerificationError",
]
