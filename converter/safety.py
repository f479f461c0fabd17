"""Safe loading: refuse model files that would run code or reach outside the model.

Checks run on the file's bytes *before* any framework loads it (and before
``validate`` runs a source). A refusal names the file, what it would have run,
and the flag that allows it (``--unsafe-load`` / ``unsafe_load=True``):

- Keras ``.keras`` / ``.h5``: a ``Lambda`` layer (or any layer config carrying
  Python bytecode) is refused with the layer's name, read from the stored config.
- SavedModel / frozen GraphDef: ops that run Python (``PyFunc``, ``EagerPyFunc``),
  read or write files, or talk to the network are refused, all listed at once.
  Checkpoint save/restore ops are allowed: they are how variables load.
- Zip archives (``.keras``, TorchScript ``.pt``, ``.pt2``): members that escape the
  directory and zip bombs are refused.
- TorchScript: loading a TorchScript file runs its TorchScript code; calls that
  reach outside the model (file reads/writes, loading libraries) are refused.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from converter.errors import InputError

UNSAFE_FLAG = "--unsafe-load (API: unsafe_load=True)"

#: TF ops that run Python, touch the file system or the network. Checkpoint
#: Save/Restore ops are not here: SavedModels restore their variables with them.
TF_UNSAFE_OPS = frozenset({
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst", "DeleteFile",
    "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordReader", "TFRecordReaderV2",
    "LMDBReader", "IdentityReader", "IdentityReaderV2",
    "TFRecordDataset", "TFRecordDatasetV2", "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
    "TextLineDataset", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "SqlDataset",
    "ExperimentalSqlDataset", "LMDBDataset", "ExperimentalLMDBDataset", "SnapshotDataset",
    "SnapshotDatasetV2", "SaveDataset", "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord", "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
    "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary",
    "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
    "WriteRawProtoSummary", "ImportEvent", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
    "DebugNanCount", "DebugNumericSummary", "DebugNumericSummaryV2",
    "Rpc", "TryRpc", "GenerateBoostedTreesBatchedStatsSummaries", "DecodeProtoV2", "EncodeProto",
    "LoadAndRemapMatrix", "SaveSlices",
})

#: TorchScript calls that reach outside the model.
TORCHSCRIPT_UNSAFE = re.compile(
    r"\b(?:ops\.aten\.from_file|torch\.from_file|ops\.aten\.save|torch\.save|torch\.load|"
    r"ops\.load_library|torch\.ops\.load_library|torch\.classes\.load_library)\b"
)

MAX_ZIP_RATIO = 200  # uncompressed / compressed, per member
MAX_ZIP_TOTAL = 64 * 2**30


class UnsafeModelError(InputError):
    """Loading the file would run code or reach outside the model."""


def check_source(source: Any, fmt: str, *, unsafe_load: bool = False) -> None:
    """Refuse ``source`` (a path; live objects are the user's own) if it is unsafe to load.

    Raises:
        UnsafeModelError: the file would run code; names the file, what, and the flag.
        InputError: the archive is malformed (escaping members, zip bomb).
    """
    if not isinstance(source, (str, os.PathLike)):
        return
    path = pathlib.Path(source)
    if fmt in ("keras", "torchscript", "exported_program") and zipfile.is_zipfile(path):
        check_zip(path)
    if unsafe_load:
        return
    if fmt == "keras":
        _refuse(path, "Python code in layer(s)", [f"{cls} {name!r}" for cls, name in keras_code_layers(path)])
    elif fmt in ("savedmodel", "graphdef"):
        found = tf_unsafe_ops(path, fmt)
        _refuse(path, "ops that run Python or reach files or the network", [f"{op} ({node})" for op, node in found])
    elif fmt == "torchscript":
        _refuse(path, "TorchScript calls that reach outside the model", torchscript_unsafe_calls(path))


def _refuse(path: pathlib.Path, what: str, found: list[str]) -> None:
    if found:
        shown = ", ".join(found[:10]) + (f", ... ({len(found)} in all)" if len(found) > 10 else "")
        raise UnsafeModelError(
            f"{path}: refusing to load: it contains {what}: {shown}",
            f"if you trust this file, pass {UNSAFE_FLAG}",
        )


def check_zip(path: pathlib.Path) -> None:
    """Refuse archives whose members escape the directory, or that expand absurdly."""
    try:
        with zipfile.ZipFile(path) as z:
            total = 0
            for info in z.infolist():
                name = info.filename
                if name.startswith(("/", "\\")) or ".." in pathlib.PurePosixPath(name.replace("\\", "/")).parts:
                    raise InputError(f"{path}: archive member {name!r} escapes the archive's directory", "the file is malformed or hostile")
                if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO and info.file_size > 2**26:
                    raise InputError(f"{path}: archive member {name!r} expands {info.file_size / info.compress_size:.0f}x (a zip bomb?)",
                                     "the file is malformed or hostile")
                total += info.file_size
            if total > MAX_ZIP_TOTAL:
                raise InputError(f"{path}: the archive claims {total / 2**30:.0f} GiB uncompressed", "the file is malformed or hostile")
    except zipfile.BadZipFile as e:
        raise InputError(f"{path}: corrupt zip archive ({e})", "re-export or re-download it") from None


def keras_code_layers(path: pathlib.Path) -> list[tuple[str, str]]:
    """``(class, layer name)`` of every layer whose stored config carries Python code."""
    config = _keras_config(path)
    return [] if config is None else list(_code_layers(config))


def _keras_config(path: pathlib.Path) -> Any:
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        except (KeyError, ValueError, zipfile.BadZipFile):
            raise InputError(f"{path}: not a Keras archive (no readable config.json)", "re-export it with model.save") from None
    try:
        import h5py
    except ImportError:
        return None
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as e:
        raise InputError(f"{path}: not a readable HDF5 file ({e})", "re-export it with model.save") from None
    if raw is None:
        return None
    try:
        return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        raise InputError(f"{path}: the stored Keras model config is not valid JSON", "re-export it") from None


def _code_layers(config: Any) -> Iterator[tuple[str, str]]:
    if isinstance(config, dict):
        cls = config.get("class_name")
        inner = config.get("config")
        if isinstance(inner, dict) and (cls in ("Lambda", "TFOpLambda") or _carries_bytecode(inner)):
            yield str(cls), str(inner.get("name", "?"))
        for value in config.values():
            yield from _code_layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from _code_layers(value)


def _carries_bytecode(config: dict) -> bool:
    fn = config.get("function")
    return isinstance(fn, dict) and fn.get("class_name") == "__lambda__" or config.get("function_type") == "lambda"


def tf_unsafe_ops(path: pathlib.Path, fmt: str) -> list[tuple[str, str]]:
    """``(op, node name)`` of every unsafe op in a SavedModel's or GraphDef's graphs and functions."""
    graphs = _tf_graphs(path, fmt)
    found = []
    for graph in graphs:
        for node in _tf_nodes(graph):
            if node.op in TF_UNSAFE_OPS:
                found.append((node.op, node.name))
    return found


def _tf_graphs(path: pathlib.Path, fmt: str) -> list[Any]:
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import graph_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    if fmt == "savedmodel":
        pb = path / "saved_model.pb"
        if not pb.is_file():
            raise InputError(f"{path}: no saved_model.pb in the SavedModel directory")
        proto = saved_model_pb2.SavedModel()
        try:
            proto.ParseFromString(pb.read_bytes())
        except DecodeError as e:
            raise InputError(f"{pb}: corrupt SavedModel protobuf ({e})", "re-export or re-download it") from None
        return [mg.graph_def for mg in proto.meta_graphs]
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(path.read_bytes())
    except DecodeError as e:
        raise InputError(f"{path}: corrupt GraphDef protobuf ({e})", "re-export or re-download it") from None
    return [graph]


def _tf_nodes(graph: Any) -> Iterable[Any]:
    yield from graph.node
    for fn in graph.library.function:
        yield from fn.node_def


def torchscript_unsafe_calls(path: pathlib.Path) -> list[str]:
    """Calls in a TorchScript archive's code that reach outside the model."""
    if not zipfile.is_zipfile(path):
        return []
    found = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename.endswith(".py") and "/code/" in f"/{info.filename}" and info.file_size < 2**26:
                text = z.read(info).decode("utf-8", "replace")
                found += [f"{m.group(0)} in {info.filename}" for m in TORCHSCRIPT_UNSAFE.finditer(text)]
    return found
