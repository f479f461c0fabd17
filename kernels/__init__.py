"""Per-runtime implementations of IR (ONNX) ops, and an executor that runs an IR model on them.

``kernels`` imports only ``ir``; each runtime's framework (torch, tensorflow) is
imported lazily by its own subpackage (``kernels.torch``, ``kernels.tf``).
"""

from kernels.registry import KernelTable

__all__ = ["KernelTable"]
