"""TensorFlow kernels for ONNX ops, one small function per op (and per version where semantics changed).

Every kernel is written in ``tf.*`` ops only and works both eagerly and inside a
``tf.function`` whose input signature has ``None`` dims: dynamic sizes come from
``tf.shape``. Shape-like inputs (axes, pads, split sizes, Resize scales and
sizes) take a fast path when ``tf.get_static_value`` knows them while tracing
and are otherwise handled as run-time tensors; what truly must be static (a
count that fixes the output rank, a sequence position) is refused with a clear
error.

Calling convention (the same as the torch kernels'):

- ONNX inputs are positional, ``None`` for an omitted optional input; a variadic
  input (``Concat``, ``Sum``, ``Loop``'s carried values) is one list argument.
- ONNX attributes are keyword arguments named as in the spec with the spec's
  defaults; tensor attributes arrive as tensors, graph attributes as callables
  (see ``kernels.tf.control``). Kernels with a ``num_outputs`` parameter are told
  how many outputs the node uses.
- A kernel returns a tensor, or a tuple / list of tensors in ONNX output order.
  A sequence value is a Python list of tensors (so a kernel producing one
  returns it in a 1-tuple), an empty optional is ``None``.

Convolutions and pools run channels-last inside (TensorFlow's CPU kernels are
NHWC only); ``kernels.tf.nn`` also exposes the channels-last cores that the
SavedModel back end calls on values it already holds channels-last.

Importing this package imports TensorFlow and registers every family in :data:`TF`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kernels.registry import KernelTable  # noqa: E402

TF = KernelTable("tf")

# Families register into TF on import.
from kernels.tf import (  # noqa: E402,F401
    activation,
    attention,
    contrib_quant,
    contrib_transformer,
    control,
    elementwise,
    image,
    linalg,
    loss,
    ml,
    ml_svm,
    ml_trees,
    nn,
    normalization,
    pad,
    patches,
    quant,
    reduce,
    resize,
    rnn,
    sequence,
    shape,
    spectral,
    strings,
    tensor,
    text,
)

__all__ = ["TF"]
