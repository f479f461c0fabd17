"""Reading and writing ``.tflite`` flatbuffers: Flex ops used, and the ``crossgraph`` metadata entry."""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import numpy as np

#: The name of the flatbuffer metadata entry this back end writes (JSON).
METADATA_NAME = "crossgraph"


def flex_ops(flat: bytes) -> list[str]:
    """Names of the TF (Flex) ops a ``.tflite`` flatbuffer uses (custom op codes ``Flex<Op>``)."""
    found = sorted(set(re.findall(rb"Flex([A-Z][A-Za-z0-9]+)", flat)))
    return [f.decode() for f in found]


def with_metadata(flat: bytes, content: dict[str, Any]) -> bytes:
    """``flat`` with a ``crossgraph`` metadata entry holding ``content`` as JSON."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flat, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(content).encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(flat) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``crossgraph`` metadata of a ``.tflite`` file (``{}`` when it has none).

    Keys: ``io_layouts`` (``{"inputs": {name: perm}, "outputs": {name: perm}}``, the
    permutation from the source's layout to the file's) and ``specialized``
    (``{symbol: size}``).

    Example:
        >>> read_metadata("m.tflite")   # doctest: +SKIP
        {'specialized': {'seq': 8}, 'io_layouts': {}}
    """
    schema = _schema()
    flat = pathlib.Path(path).read_bytes()
    model = schema.Model.GetRootAs(flat, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode() == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode())
    return {}


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema
