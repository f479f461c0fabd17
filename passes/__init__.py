"""Optimization passes over the IR and the pass manager that runs them by level.

``optimize(model, level)`` changes the model in place and returns a
:class:`PassReport`. Levels, passes and the fixed-point loop are in
:mod:`passes.pipeline`; the rewrite rules crossgraph adds to onnx_ir's and
onnxscript's are in :mod:`passes.rules`.

Example:
    >>> import ir, passes
    >>> m = ir.from_onnx_text('''<ir_version: 10, opset_import: ["" : 21]>
    ...     g (float[N] x) => (float[N] y) { t = Identity(x)  y = Relu(t) }''')
    >>> passes.optimize(m, level=1).summary().startswith("-O1: 2 -> 1 nodes")
    True
"""

from __future__ import annotations

from passes.pipeline import (
    DEFAULT_SIZE_CAP_BYTES,
    LEVELS,
    PassError,
    PassSpec,
    PassVerificationError,
    optimize,
    run_passes,
)
from passes.report import PassFailure, PassReport, PassStats, count_nodes

__all__ = [
    "DEFAULT_SIZE_CAP_BYTES",
    "LEVELS",
    "PassError",
    "PassFailure",
    "PassReport",
    "PassSpec",
    "PassStats",
    "PassVerificationError",
    "count_nodes",
    "optimize",
    "run_passes",
]
