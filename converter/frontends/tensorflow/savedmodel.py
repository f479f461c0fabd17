"""TensorFlow SavedModel directories: one signature (``serving_default`` by default).

The signature's concrete function is called from a ``tf.function`` that takes
its inputs in signature order and returns the signature's output dict, so the
graph's inputs and outputs keep the signature's names (``x``, ``output_0``).
"""

from __future__ import annotations

import pathlib
from typing import Any

import ir
from converter.errors import InputError
from converter.frontends.tensorflow import convert, signature


def load(
    path: str | pathlib.Path,
    *,
    signature_name: str = "serving_default",
    inputs: Any = None,
    outputs: list[str] | None = None,
) -> ir.Model:
    """Load the SavedModel at ``path`` and convert signature ``signature_name``.

    Raises:
        InputError: ``path`` is not a SavedModel, or has no such signature (the
            message lists the ones it has).
    """
    import tensorflow as tf

    path = pathlib.Path(path)
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise InputError(f"{path} is not a SavedModel directory (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # corrupt or incompatible files
        raise InputError(f"TensorFlow cannot load the SavedModel {path}: {type(e).__name__}: {e}") from e
    signatures = dict(loaded.signatures)
    if signature_name not in signatures:
        raise InputError(
            f"SavedModel {path} has no signature {signature_name!r}",
            f"available signatures: {', '.join(sorted(signatures)) or 'none'}",
        )
    return from_concrete_function(signatures[signature_name], inputs=inputs, outputs=outputs,
                                  description=f"signature {signature_name!r} of {path}")


def from_concrete_function(
    function: Any, *, inputs: Any = None, outputs: list[str] | None = None, description: str = "concrete function"
) -> ir.Model:
    """Convert a signature-style ``ConcreteFunction`` (keyword inputs, dict outputs)."""
    import tensorflow as tf

    args, kwargs = function.structured_input_signature
    # TF's own flat order: positional arguments, then keyword ones sorted by name
    specs = {**{s.name: s for s in tf.nest.flatten(args)}, **{k: kwargs[k] for k in sorted(kwargs)}}
    source = [signature.SourceInput(name, spec.shape.as_list(), spec.dtype) for name, spec in specs.items()]
    sig, symbols = signature.build(source, inputs)
    names = [s.name for s in sig]

    def call(*values):
        return convert.as_output_dict(function(**dict(zip(names, values, strict=True))), keep=outputs)

    # the signature is a fixed graph: no probe, ONNX shape inference names the outputs' dims
    traced = convert.Traced(tf.function(call, input_signature=sig), sig, symbols, description=description)
    return convert.to_ir(traced)
