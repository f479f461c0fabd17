"""TensorBoard event files without TensorFlow or tensorboard installed.

TensorBoard's graph plugin reads ``tensorflow.GraphDef`` protos stored in
``Event.graph_def`` records of an *event file* (``events.out.tfevents.*``), a
TFRecord file: each record is

    uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

(little-endian; CRC-32C, Castagnoli polynomial, masked as TFRecord specifies).

The protos are declared here from TensorFlow's ``.proto`` field numbers
(``event.proto``, ``graph.proto``, ``node_def.proto``, ``attr_value.proto``,
``tensor_shape.proto``, ``versions.proto``), only the fields crossgraph writes,
in a private descriptor pool, so they never clash with TensorFlow's own
classes when both are loaded. ``DataType`` fields are declared ``int32``: an
enum has the same wire encoding. The tests read the files back with
TensorFlow's own record reader and protos.
"""

from __future__ import annotations

import functools
import pathlib
import socket
import struct
import time
from typing import Any

#: ``tensorflow.DataType`` numbers, by ONNX data type name.
TF_DTYPES: dict[str, int] = {
    "FLOAT": 1, "DOUBLE": 2, "INT32": 3, "UINT8": 4, "INT16": 5, "INT8": 6, "STRING": 7,
    "COMPLEX64": 8, "INT64": 9, "BOOL": 10, "BFLOAT16": 14, "UINT16": 17, "COMPLEX128": 18,
    "FLOAT16": 19, "UINT32": 22, "UINT64": 23, "FLOAT8E5M2": 24, "FLOAT8E4M3FN": 25,
    "FLOAT8E4M3FNUZ": 26, "FLOAT8E5M2FNUZ": 28, "INT4": 29, "UINT4": 30, "FLOAT4E2M1": 33,
}
DT_INVALID = 0
DT_VARIANT = 21  # sequences, optionals, maps: not a plain tensor

# (name, number, type, repeated, message type) per field; types are descriptor_pb2's.
_DOUBLE, _FLOAT, _INT64, _INT32, _BOOL, _STRING, _MESSAGE, _BYTES = 1, 2, 3, 5, 8, 9, 11, 12
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "Event": [
        ("wall_time", 1, _DOUBLE, False, None),
        ("step", 2, _INT64, False, None),
        ("file_version", 3, _STRING, False, None),
        ("graph_def", 4, _BYTES, False, None),  # a serialized GraphDef
    ],
    "GraphDef": [
        ("node", 1, _MESSAGE, True, "NodeDef"),
        ("versions", 4, _MESSAGE, False, "VersionDef"),
    ],
    "VersionDef": [("producer", 1, _INT32, False, None), ("min_consumer", 2, _INT32, False, None)],
    "NodeDef": [
        ("name", 1, _STRING, False, None),
        ("op", 2, _STRING, False, None),
        ("input", 3, _STRING, True, None),
        ("device", 4, _STRING, False, None),
        ("attr", 5, _MESSAGE, True, "NodeDef.AttrEntry"),
    ],
    "NodeDef.AttrEntry": [("key", 1, _STRING, False, None), ("value", 2, _MESSAGE, False, "AttrValue")],
    "AttrValue": [
        ("list", 1, _MESSAGE, False, "AttrValue.ListValue"),
        ("s", 2, _BYTES, False, None),
        ("i", 3, _INT64, False, None),
        ("f", 4, _FLOAT, False, None),
        ("b", 5, _BOOL, False, None),
        ("type", 6, _INT32, False, None),
        ("shape", 7, _MESSAGE, False, "TensorShapeProto"),
    ],
    "AttrValue.ListValue": [
        ("s", 2, _BYTES, True, None),
        ("i", 3, _INT64, True, None),
        ("f", 4, _FLOAT, True, None),
        ("b", 5, _BOOL, True, None),
        ("type", 6, _INT32, True, None),
        ("shape", 7, _MESSAGE, True, "TensorShapeProto"),
    ],
    "TensorShapeProto": [
        ("dim", 2, _MESSAGE, True, "TensorShapeProto.Dim"),
        ("unknown_rank", 3, _BOOL, False, None),
    ],
    "TensorShapeProto.Dim": [("size", 1, _INT64, False, None), ("name", 2, _STRING, False, None)],
}
_ONEOF_VALUE = {"list", "s", "i", "f", "b", "type", "shape"}  # AttrValue's ``oneof value``


@functools.cache
def protos() -> dict[str, Any]:
    """The message classes by name: ``protos()["GraphDef"]()`` is an empty GraphDef."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto(name="crossgraph_tfevents.proto", package="tensorflow", syntax="proto3")
    declared: dict[str, Any] = {}
    for name in _MESSAGES:  # outer messages come before their nested ones
        outer, _, inner = name.partition(".")
        declared[name] = declared[outer].nested_type.add(name=inner) if inner else file.message_type.add(name=name)
    declared["NodeDef.AttrEntry"].options.map_entry = True
    declared["AttrValue"].oneof_decl.add(name="value")
    for name, fields in _MESSAGES.items():
        for field_name, number, ftype, repeated, type_name in fields:
            field = declared[name].field.add(name=field_name, number=number, type=ftype)
            field.label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".tensorflow.{type_name}"
            if name == "AttrValue" and field_name in _ONEOF_VALUE:
                field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}")) for name in _MESSAGES}


@functools.cache
def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # reversed Castagnoli polynomial
        table.append(crc)
    return tuple(table)


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
    table = _crc_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The CRC as TFRecord stores it: rotated right by 15 bits, plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """One TFRecord holding ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def write_graph_event(directory: pathlib.Path, graph_def: Any) -> pathlib.Path:
    """Write a new event file in ``directory`` holding ``graph_def``; returns its path.

    The file holds the version event TensorBoard expects first, then one event
    whose ``graph_def`` is the serialized GraphDef. Event files an earlier call
    wrote in ``directory`` are replaced; other files are left alone.

    Raises:
        InputError: the directory cannot be created or written.
    """
    event = protos()["Event"]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return _write_events(directory, event, graph_def)
    except OSError as e:
        from converter.errors import InputError

        raise InputError(f"TensorBoard log directory {directory}: cannot be written ({e.strerror or e})",
                         "choose a log directory you can write to") from None


def _write_events(directory: pathlib.Path, event: Any, graph_def: Any) -> pathlib.Path:
    now = time.time()
    path = directory / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.crossgraph"
    records = [
        event(wall_time=now, step=0, file_version="brain.Event:2"),
        event(wall_time=now, step=0, graph_def=graph_def.SerializeToString()),
    ]
    tmp = directory / ".crossgraph-graph.tmp"  # no "tfevents" in the name: TensorBoard skips it
    tmp.write_bytes(b"".join(tfrecord(e.SerializeToString()) for e in records))
    tmp.replace(path)  # TensorBoard may be watching the directory: never show it a half-written file
    for old in directory.glob("events.out.tfevents.*.crossgraph"):
        if old != path:  # a rewritten run shows only its newest graph
            old.unlink()
    return path
