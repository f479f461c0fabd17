"""Keras models (Keras 3, and Keras 2 files through Keras 3's loader): files and live objects.

tf2onnx's own ``from_keras`` fails on Keras 3 (``KeyError: keras_tensor_...``),
so the model is called inside a ``tf.function`` whose input signature comes from
``model.inputs``, and that function is converted (with the trace-time stand-ins
of :mod:`.keras_layers` for layers whose TF graph tf2onnx mistranslates). Inputs
keep the Keras input names, outputs the model's output names; provenance is the
Keras layer path.
"""

from __future__ import annotations

import pathlib
from typing import Any

import ir
from converter.errors import InputError
from converter.frontends.tensorflow import convert, keras_layers, naming, signature


def load_file(
    path: str | pathlib.Path, *, inputs: Any = None, outputs: list[str] | None = None, safe_mode: bool = True
) -> ir.Model:
    """Load a ``.keras`` or ``.h5`` file (see :func:`read_model`) and convert it.

    Raises:
        InputError: the file is missing or Keras cannot load it.
    """
    return from_model(read_model(path, safe_mode=safe_mode), inputs=inputs, outputs=outputs)


def read_model(path: str | pathlib.Path, *, safe_mode: bool = True) -> Any:
    """The live model in a ``.keras`` or ``.h5`` file (``safe_mode`` on unless told, not compiled).

    An HDF5 file Keras 3 cannot read (Keras 2 configs it no longer accepts, such
    as an LSTM's ``time_major``) is loaded with Keras 2 (``tf_keras``) when that
    is installed.

    Raises:
        InputError: the file is missing or Keras cannot load it.
    """
    import keras

    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"no Keras model file at {path}")
    try:
        return keras.models.load_model(path, safe_mode=safe_mode, compile=False)
    except Exception as e:  # Keras raises many kinds; all mean "cannot read it"
        model = _load_with_keras2(path, safe_mode) if _is_hdf5(path) else None
        if model is None:
            raise InputError(f"Keras cannot load {path}: {type(e).__name__}: {e}") from e
        return model


def _is_hdf5(path: pathlib.Path) -> bool:
    with path.open("rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _load_with_keras2(path: pathlib.Path, safe_mode: bool) -> Any:
    """The model in the HDF5 file ``path`` as Keras 2 reads it; ``None`` without ``tf_keras`` or on failure."""
    try:
        import tf_keras
    except ImportError:
        return None
    try:
        return tf_keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception:  # noqa: BLE001 - Keras 3's error is the one reported
        return None


def from_model(model: Any, *, inputs: Any = None, outputs: list[str] | None = None) -> ir.Model:
    """Convert a live Keras model (functional, sequential or subclassed with known inputs)."""
    source = _source_inputs(model, inputs)
    sig, symbols = signature.build(source, inputs)
    output_names = _output_names(model)
    single = len(source) == 1

    def call(*args):
        result = model(args[0] if single else list(args), training=False)
        return convert.as_output_dict(result, output_names, outputs)

    import tensorflow as tf

    with keras_layers.stand_ins(model):
        return convert.to_ir(
            convert.Traced(
                function=tf.function(call, input_signature=sig),
                signature=sig,
                symbols=symbols,
                namer=naming.keras_namer(model.name, _layer_names(model)),
                probe=call,
                description=f"Keras model {model.name!r}",
                output_order=outputs or output_names,
            )
        )


def _source_inputs(model: Any, inputs: Any) -> list[signature.SourceInput]:
    try:
        tensors = list(model.inputs or [])
    except (AttributeError, ValueError):
        tensors = []
    if tensors:
        return [signature.SourceInput(_input_name(t, i), list(t.shape), _dtype_name(t.dtype)) for i, t in enumerate(tensors)]
    if inputs:  # a subclassed model that was never built on Inputs: the specs say everything
        from converter.inputs import normalize_inputs

        return [signature.SourceInput(s.name, None, None) for s in normalize_inputs(inputs)]
    raise InputError(f"Keras model {model.name!r} has no known inputs", "give them with --input NAME:SHAPE[:DTYPE]")


def _dtype_name(dtype: Any) -> str:
    """``"float32"`` for a Keras 3 dtype (a string) and a Keras 2 one (a ``tf.DType``) alike."""
    return dtype if isinstance(dtype, str) else getattr(dtype, "name", None) or str(dtype)


def _input_name(tensor: Any, index: int) -> str:
    """The input layer's name (``keras.Input(name=...)``, else ``input_layer``...)."""
    name = _layer_of(tensor) or getattr(tensor, "name", None) or f"input_{index}"
    return name.split(":")[0]  # Keras 2 tensors are named "x:0"


def _output_names(model: Any) -> list[str] | None:
    """The model's output names, else the names of the layers making its outputs; ``None`` if not unique."""
    names = list(getattr(model, "output_names", None) or [])
    if not names:
        try:
            names = [_layer_of(t) for t in model.outputs or []]
        except (AttributeError, ValueError):
            names = []
    return names if names and all(names) and len(set(names)) == len(names) else None


def _layer_of(tensor: Any) -> str | None:
    history = getattr(tensor, "_keras_history", None)
    return getattr(history[0], "name", None) if history else None


def _layer_names(model: Any) -> list[str]:
    flatten = getattr(model, "_flatten_layers", None)
    layers = flatten(include_self=False, recursive=True) if flatten else getattr(model, "layers", [])
    return [layer.name for layer in layers]
