"""ONNX back end: IR -> ``.onnx`` through onnx_ir's serde.

- Weights go to an external data file (``<name>.data`` beside the model) when the
  model already had external data or when the total would pass protobuf's 2 GB
  limit; otherwise they are stored inline. onnx_ir streams external tensors from
  their memory-mapped source, so saving never needs the whole model in RAM.
- Inline weights above :data:`STREAM_THRESHOLD` are streamed into the file too:
  the graph goes to a temporary external-data file first, then the single file
  is written field by field, each tensor's bytes copied in chunks, so the
  ModelProto and its serialized bytes (two more copies of the weights) never
  exist in memory.
- ``opset=N`` converts the default-domain opset with ``onnx.version_converter``
  and fails with a clear error where it cannot.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from typing import IO, Any

import ir
from converter.errors import InputError

#: Above this many bytes of weights, they go to external data (protobuf caps a message at 2 GB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000
#: Above this many bytes of inline weights, the single file is written by streaming (see above).
STREAM_THRESHOLD = 64 * 2**20


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "onnx",
    opset: int | None = None,
    external_data: bool | None = None,
    **options: Any,
) -> None:
    """Write ``model`` to ``path`` as ONNX.

    Args:
        model: the model; not modified (an opset conversion works on a copy).
        path: the ``.onnx`` file to write.
        opset: the default-domain opset to convert to; ``None`` keeps the model's.
        external_data: force (True) or forbid (False) external data; ``None`` decides
            by size and by whether the model already had external data.

    Raises:
        InputError: the opset conversion is impossible, or the model is too large
            for a single file and ``external_data=False`` was given.
    """
    path = pathlib.Path(path)
    if opset is not None and opset != ir.model_opset(model):
        model = convert_opset(model, opset)
    use_external = _needs_external_data(model) if external_data is None else external_data
    if external_data is False and _weight_bytes(model) > EXTERNAL_DATA_THRESHOLD:
        raise InputError("the model's weights pass protobuf's 2 GB limit", "allow external data")
    if use_external:
        ir.save(model, path, external_data=path.name + ".data", size_threshold_bytes=1024)
    elif _weight_bytes(model) > STREAM_THRESHOLD:
        save_inline_streaming(model, path)
    else:
        ir.save(model, path)


def convert_opset(model: ir.Model, opset: int) -> ir.Model:
    """A copy of ``model`` at default-domain ``opset``, via ``onnx.version_converter``.

    Raises:
        InputError: onnx's converter cannot do it; names the source and target opsets.
    """
    import onnx.version_converter

    current = ir.model_opset(model)
    latest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= latest:
        raise InputError(f"cannot convert to opset {opset}", f"choose an opset between 7 and {latest}")
    proto = ir.to_proto(model)
    try:
        converted = onnx.version_converter.convert_version(proto, opset)
    except Exception as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        reason = reason.split("Assertion `false` failed:")[-1].strip()
        raise InputError(
            f"cannot convert the model from opset {current} to opset {opset}: {reason}",
            f"keep the model's opset ({current}) or choose another with --opset",
        ) from None
    return ir.serde.deserialize_model(converted)


def _weight_bytes(model: ir.Model) -> int:
    total = 0
    for graph in model.graphs():
        for value in graph.initializers.values():
            if value.const_value is not None:
                total += value.const_value.nbytes
    return total


def _needs_external_data(model: ir.Model) -> bool:
    for graph in model.graphs():
        for value in graph.initializers.values():
            if isinstance(value.const_value, ir.ExternalTensor):
                return True
    return _weight_bytes(model) > EXTERNAL_DATA_THRESHOLD


def save_inline_streaming(model: ir.Model, path: pathlib.Path) -> None:
    """Write ``model`` as one ``.onnx`` file holding every weight, in bounded memory.

    The model is first saved with its main-graph initializers in a temporary
    external-data file beside ``path`` (onnx_ir streams them there one at a time);
    then the file is assembled from the small ModelProto that references them:
    the model's fields without the graph, the graph's fields without its
    initializers, then each initializer with its ``raw_data`` copied from the
    temporary file in chunks. Protobuf reads fields in any order, so the result
    parses as the same ModelProto that ``ir.save`` would have written. Peak
    memory: one chunk, not the proto and its serialized bytes.
    """
    import onnx

    path = pathlib.Path(path)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=".stream-", dir=path.parent))
    try:
        staged = scratch / "model.onnx"
        ir.save(model, staged, external_data="model.onnx.data", size_threshold_bytes=0)
        proto = onnx.load(str(staged), load_external_data=False)
        initializers = list(proto.graph.initializer)
        del proto.graph.initializer[:]
        onnx.load_external_data_for_model(proto, str(scratch))  # tensors in subgraphs (small): inline
        graph = proto.graph.SerializeToString()
        proto.ClearField("graph")
        pieces = [_initializer_piece(t, scratch) for t in initializers]
        with open(path, "wb") as out:
            out.write(proto.SerializeToString())
            graph_size = len(graph) + sum(_key_size(5, size) + size for _, size, _ in pieces)
            _write_key(out, 7, graph_size)  # ModelProto.graph
            out.write(graph)
            for head, size, data in pieces:
                _write_key(out, 5, size)  # GraphProto.initializer
                out.write(head)
                if data is not None:
                    _write_key(out, 9, data[2])  # TensorProto.raw_data
                    _copy_range(data[0], data[1], data[2], out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _initializer_piece(tensor: Any, base: pathlib.Path) -> tuple[bytes, int, tuple[pathlib.Path, int, int] | None]:
    """``(fields without raw_data, serialized size with it, (file, offset, length) of raw_data or None)``."""
    import onnx

    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        head = tensor.SerializeToString()
        return head, len(head), None
    entry = {e.key: e.value for e in tensor.external_data}
    location = base / entry["location"]
    offset, length = int(entry.get("offset", 0)), int(entry["length"])
    tensor.ClearField("data_location")
    tensor.ClearField("external_data")
    head = tensor.SerializeToString()
    return head, len(head) + _key_size(9, length) + length, (location, offset, length)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key_size(field: int, length: int) -> int:
    """Bytes of a length-delimited field's tag and length prefix."""
    return len(_varint(field << 3 | 2)) + len(_varint(length))


def _write_key(out: IO[bytes], field: int, length: int) -> None:
    """The tag (wire type 2: length-delimited) and length prefix of field ``field``."""
    out.write(_varint(field << 3 | 2) + _varint(length))


def _copy_range(source: pathlib.Path, offset: int, length: int, out: IO[bytes], chunk: int = 16 * 2**20) -> None:
    """Copy ``length`` bytes at ``offset`` of ``source`` to ``out``, ``chunk`` bytes at a time."""
    with open(source, "rb") as f:
        f.seek(offset)
        while length > 0:
            block = f.read(min(chunk, length))
            if not block:
                raise OSError(f"{source}: ends {length} bytes early")
            out.write(block)
            length -= len(block)
