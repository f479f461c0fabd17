"""Model formats: names, detection from a path or a live object, and the conversion matrix.

A format is read by one front end (``converter/frontends/<module>.py``, a
``load(source, *, format, inputs, **options) -> ir.Model`` function) and written
by one back end (``converter/backends/<module>.py``, a
``save(model, path, *, format, **options) -> None`` function). A format whose
module is not there yet is listed, and refused with a clear "not yet supported".
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import re
from typing import Any

from converter.errors import InputError


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    description: str
    suffixes: tuple[str, ...]
    frontend: str | None  # module under converter.frontends, None if it cannot be read
    backend: str | None  # module under converter.backends, None if it cannot be written

    def can_read(self) -> bool:
        return self.frontend is not None and _module_exists(f"converter.frontends.{self.frontend}")

    def can_write(self) -> bool:
        return self.backend is not None and _module_exists(f"converter.backends.{self.backend}")


FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format("onnx", "ONNX model (.onnx, external data beside it)", (".onnx",), "onnx", "onnx"),
        Format("torchscript", "TorchScript file (torch.jit.save)", (".pt", ".pth"), "torch", "torchscript"),
        Format("exported_program", "torch.export ExportedProgram (.pt2)", (".pt2",), "torch", None),
        Format("torch", "live torch.nn.Module / ExportedProgram / ScriptModule (API)", (), "torch", None),
        Format("savedmodel", "TensorFlow SavedModel directory", (), "tensorflow", "savedmodel"),
        Format("keras", "Keras model file (.keras, .h5)", (".keras", ".h5"), "tensorflow", None),
        Format("graphdef", "frozen TensorFlow GraphDef (.pb)", (".pb",), "tensorflow", None),
        Format("tf", "live tf.function / tf.Module / Keras model (API)", (), "tensorflow", None),
        Format("tflite", "TensorFlow Lite flatbuffer (.tflite), via SavedModel", (".tflite",), None, "tflite"),
    ]
}

_ALIASES = {
    "pt": "torchscript",
    "jit": "torchscript",
    "pt2": "exported_program",
    "ep": "exported_program",
    "exportedprogram": "exported_program",
    "saved_model": "savedmodel",
    "tf_saved_model": "savedmodel",
    "h5": "keras",
    "pb": "graphdef",
    "frozen": "graphdef",
    "pytorch": "torch",
    "tensorflow": "tf",
}


_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def describe(source: Any) -> str:
    """How messages and reports name a model: its path, or ``<module.Type>`` for a live object."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"<{type(source).__module__}.{type(source).__qualname__}>"


def normalize(name: str) -> str:
    """The canonical format name for ``name`` (case-insensitive, aliases accepted)."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise InputError(
            f"unknown format {name!r}",
            f"use one of: {', '.join(FORMATS)}",
        )
    return key


def detect_source(source: Any, explicit: str | None = None) -> str:
    """The format of ``source``: ``explicit`` if given, else from its type or path.

    Raises:
        InputError: the path does not exist, or its format cannot be told.
    """
    if explicit:
        return normalize(explicit)
    if isinstance(source, str) and _FACTORY.fullmatch(source) and not pathlib.Path(source).exists():
        return "torch"  # package.module:function returning an nn.Module
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory", "check the path")
        if path.is_dir():
            if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
                return "savedmodel"
            raise InputError(
                f"{path}: is a directory but not a TensorFlow SavedModel (no saved_model.pb in it)",
                "give a model file, or a SavedModel directory",
            )
        return _by_suffix(path, "source")
    return _by_object(source)


def detect_target(destination: str | os.PathLike, explicit: str | None = None) -> str:
    """The format to write ``destination`` in: ``explicit``, else its suffix (none: SavedModel)."""
    if explicit:
        return normalize(explicit)
    path = pathlib.Path(destination)
    if path.suffix == "" or (path.is_dir() and not path.suffix):
        return "savedmodel"
    return _by_suffix(path, "destination")


def _by_suffix(path: pathlib.Path, role: str) -> str:
    suffix = path.suffix.lower()
    for f in FORMATS.values():
        if suffix in f.suffixes:
            return f.name
    known = sorted(s for f in FORMATS.values() for s in f.suffixes)
    flag = "--from" if role == "source" else "--to"
    raise InputError(
        f"{path}: cannot tell the model format from the suffix {suffix or '(none)'!r}",
        f"use a known suffix ({', '.join(known)}) or name the format with {flag}",
    )


def _by_object(obj: Any) -> str:
    mod = type(obj).__module__ or ""
    if mod.startswith("onnx") and type(obj).__name__ == "ModelProto":
        return "onnx"
    if mod.startswith("onnx_ir") and type(obj).__name__ == "Model":
        return "onnx"
    if mod.startswith("torch"):
        return "torch"
    if mod.startswith(("tensorflow", "keras", "tf_keras")):
        return "tf"
    for base in type(obj).__mro__:
        bmod = base.__module__ or ""
        if bmod.startswith("torch"):
            return "torch"
        if bmod.startswith(("tensorflow", "keras", "tf_keras")):
            return "tf"
    raise InputError(
        f"cannot convert an object of type {type(obj).__module__}.{type(obj).__qualname__}",
        "pass a path, an nn.Module, an ExportedProgram, a Keras model, a tf.function or an onnx.ModelProto",
    )
