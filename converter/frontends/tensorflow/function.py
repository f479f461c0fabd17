"""Live TensorFlow objects: ``tf.function``, ``tf.Module``, concrete functions, Keras models.

A ``tf.function`` needs an input signature (its own, or one made from the
``inputs`` specs). A ``tf.Module`` is converted through its ``__call__`` when
that is a ``tf.function``, else through its only ``tf.function`` attribute.
Inputs are named after the function's arguments (or the specs' names), outputs
after a returned dict's keys, else ``output_0``, ``output_1``...
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import ir
from converter.errors import InputError
from converter.frontends.tensorflow import convert, keras, savedmodel, signature


def from_object(obj: Any, *, inputs: Any = None, outputs: list[str] | None = None) -> ir.Model:
    """Convert a live TF object (see the module docstring).

    Raises:
        InputError: the object is none of the kinds above, or its inputs are unknown.
    """
    import tensorflow as tf

    if _is_keras_model(obj):
        return keras.from_model(obj, inputs=inputs, outputs=outputs)
    if isinstance(obj, tf.types.experimental.ConcreteFunction):
        return savedmodel.from_concrete_function(obj, inputs=inputs, outputs=outputs)
    if isinstance(obj, tf.Module) and not _is_function(obj):
        obj = _module_function(obj)
    if not _is_function(obj):
        raise InputError(
            f"cannot convert a {type(obj).__name__} from TensorFlow",
            "pass a tf.function, a tf.Module with one tf.function, or a Keras model",
        )
    return from_function(obj, inputs=inputs, outputs=outputs)


def from_function(function: Any, *, inputs: Any = None, outputs: list[str] | None = None) -> ir.Model:
    """Convert a ``tf.function`` with an input signature, or with ``inputs`` specs."""
    import tensorflow as tf

    source = _source_inputs(function, inputs)
    sig, symbols = signature.build(source, inputs)

    python = getattr(function, "python_function", None)
    # A signature of unknown ranks (TensorSpec(None)) traces every op rank-blind (tf.rank,
    # Rank nodes): the Python body is traced again under the shapes that ``inputs`` gave.
    own = getattr(function, "input_signature", None)
    blind = own is not None and python is not None and any(
        s.shape.rank is None for s in tf.nest.flatten(own))
    body = python if blind else function

    def call(*args):
        return convert.as_output_dict(body(*args), keep=outputs)

    def probe(*args):
        return convert.as_output_dict(python(*args), keep=outputs)

    name = getattr(function, "__name__", "tf.function")
    traced = convert.Traced(
        tf.function(call, input_signature=sig),
        sig,
        symbols,
        probe=probe if python is not None else None,
        description=f"tf.function {name!r}",
    )
    return convert.to_ir(traced)


def _source_inputs(function: Any, inputs: Any) -> list[signature.SourceInput]:
    own = getattr(function, "input_signature", None)
    if own is not None:
        import tensorflow as tf

        specs = tf.nest.flatten(own)
        names = _argument_names(function, len(specs))
        return [
            signature.SourceInput(spec.name or names[i], spec.shape.as_list() if spec.shape.rank is not None else None, spec.dtype)
            for i, spec in enumerate(specs)
        ]
    if inputs:
        from converter.inputs import normalize_inputs

        return [signature.SourceInput(s.name, None, None) for s in normalize_inputs(inputs)]
    raise InputError(
        f"tf.function {getattr(function, '__name__', '?')!r} has no input signature",
        "give it one (@tf.function(input_signature=[...])) or pass input specs",
    )


def _argument_names(function: Any, count: int) -> list[str]:
    python = getattr(function, "python_function", function)
    try:
        params = [p for p in inspect.signature(python).parameters if p != "self"]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input_{i}" for i in range(count)]


def _is_function(obj: Any) -> bool:
    import tensorflow as tf

    return isinstance(obj, tf.types.experimental.PolymorphicFunction)


def _is_keras_model(obj: Any) -> bool:
    import keras

    classes = [keras.Model]
    if "tf_keras" in sys.modules:  # Keras 2 objects, when the user has tf_keras loaded
        classes.append(sys.modules["tf_keras"].Model)
    return isinstance(obj, tuple(classes))


def _module_function(module: Any) -> Any:
    call = vars(type(module)).get("__call__")  # a tf.function defined on the class
    if _is_function(call):
        return module.__call__
    candidates = {
        name: getattr(module, name)
        for name in dir(module)
        if not name.startswith("_") and _is_function(getattr(module, name, None))
    }
    with_sig = {n: f for n, f in candidates.items() if f.input_signature is not None}
    chosen = with_sig or candidates
    if len(chosen) != 1:
        raise InputError(
            f"tf.Module {module.name!r} has {len(chosen)} tf.functions ({', '.join(sorted(chosen)) or 'none'})",
            "pass the one to convert",
        )
    return next(iter(chosen.values()))
