"""Kernel tables: one per runtime, one small function per ONNX op.

A kernel is registered by decorator for the ONNX op it implements, the opset it
applies from, and optionally a device that it overrides the common kernel on::

    TORCH = KernelTable("torch")

    @TORCH.register("LeakyRelu", since=16)
    def leaky_relu(x: Tensor, alpha: float = 0.01) -> Tensor:
        return torch.where(x >= 0, x, x * alpha)

Inputs are positional (``None`` for an omitted optional input); attributes are
keyword arguments named as in the ONNX spec, with the spec's defaults. Ops of
other domains are keyed ``"domain::Op"`` and versioned by the model's import of
that domain (``"ai.onnx.ml::TreeEnsemble"``, onnxruntime's ``"com.microsoft::QGemm"``).
Registering an (op, version, device) twice, or an op that neither ``onnx.defs``
nor onnxruntime's contrib schemas define, raises ``ValueError``; a missing
lookup raises ``NotImplementedError`` naming op, runtime and device.
"""

from __future__ import annotations

from ir.opsets import OpRegistry


class KernelTable(OpRegistry):
    """The kernels of one runtime (``"torch"``, ``"tf"``), keyed by ONNX op and version."""

    def __init__(self, runtime: str) -> None:
        super().__init__(f"{runtime} kernels", validate="onnx")
        self.runtime = runtime
