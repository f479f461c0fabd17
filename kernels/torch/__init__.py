"""TorchScript-scriptable torch kernels for ONNX ops, one small function per op.

Every kernel is a plain, type-annotated function that ``torch.jit.script``
compiles, so the TorchScript back end can call it from a generated module and
the saved ``.pt`` file carries the compiled kernels with it. Kernels never name
a device: new tensors are created on the device of an input, so the same code
runs on CPU and CUDA.

Calling convention (shared with the executor and the TorchScript back end):

- ONNX inputs are positional, ``None`` for an omitted optional input; a variadic
  input (``Concat``, ``Sum``) is one ``list[Tensor]`` argument.
- ONNX attributes follow as arguments named as in the spec, with the spec's
  defaults (``list`` attributes default to ``None``; TorchScript forbids
  mutable defaults). Tensor attributes are tensors.
- A kernel returns a ``Tensor`` (one output), a ``tuple`` (several outputs, in
  ONNX output order) or a ``list[Tensor]`` (a variadic output, ``Split``).

Importing this package imports torch and registers every family in :data:`TORCH`.
"""

from kernels.registry import KernelTable

TORCH = KernelTable("torch")

# Families register into TORCH on import.
from kernels.torch import (  # noqa: E402,F401
    activation,
    attention,
    contrib_quant,
    contrib_transformer,
    elementwise,
    loss,
    ml,
    ml_svm,
    ml_trees,
    nn,
    normalization,
    patches,
    quantize,
    reduce,
    resize,
    rnn,
    sampling,
    sequence,
    shape,
    spectral,
    tensor,
    text,
)

__all__ = ["TORCH"]
