"""The table of ATen translations: one registered function per source op.

Keys are the op as PyTorch spells it: ``"aten::add.Tensor"`` for an overload,
``"aten::relu"`` for a ``.default`` overload, ``"_operator::mul"`` for the Python
operators that SymInt arithmetic leaves in an exported graph, and
``"higher_order::cond"`` for higher-order ops. A translation is called as
``fn(e, *args, **kwargs)`` with the FX node's arguments, every ``fx.Node``
replaced by the IR value it became (a SymInt becomes a 0-d int64 value), and
returns an IR value, a sequence of them (multi-output ops), or ``None``.
``e`` is the :class:`~converter.frontends.torch.emit.Emitter` that makes nodes.

Importing this package imports every family module, which fills the table.
"""

from __future__ import annotations

import ir

ATEN = ir.OpRegistry(
    "aten translations",
    validate=r"[A-Za-z_][A-Za-z0-9_]*::[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?",
)

from converter.frontends.torch.ops import (  # noqa: E402,F401  (registers the translations)
    attention,
    control_flow,
    creation,
    elementwise,
    indexing,
    linalg,
    math,
    nn,
    reduce,
    rnn,
    scatter,
    shape,
    sorting,
    symint,
)

__all__ = ["ATEN"]
