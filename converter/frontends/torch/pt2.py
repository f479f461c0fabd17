"""Reading ``.pt2`` files (``torch.export.save``) without running code embedded in them.

:func:`load_pt2` is ``torch.export.load`` with every pickle read weights-only;
:func:`saved_dim_names` reads the names of the dynamic dims, which the archive
itself does not keep, from torch's own dynamic-shapes record when the file was
saved with one. :func:`existing_file` and :func:`first_line` are shared with the
other file sources of the front end.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import torch

from converter.errors import InputError

#: The ``extra_files`` member :func:`saved_dim_names` reads.
DYNAMIC_SHAPES_FILE = "dynamic_shapes.json"


def load_pt2(source: Any, *, unsafe_load: bool = False) -> Any:
    """Load a ``.pt2`` file (``torch.export.save``) without running code embedded in it.

    ``torch.export.load`` unpickles the archive's sample inputs, pickled weights
    and constants with ``weights_only=False`` (the sample inputs after a failed
    ``weights_only=True`` attempt), unpickles "opaque" constants with plain
    ``pickle.loads`` and loads AOTInductor shared libraries: any of them can run
    arbitrary code. This loader reads the same archive with ``weights_only=True``
    for every pickle, refuses custom-object constants and compiled native code,
    and hands the results to torch's own deserializer. Plain weights are read as
    raw bytes, never unpickled.

    Args:
        source: the ``.pt2`` path.
        unsafe_load: use ``torch.export.load`` as is (the file is trusted).

    Raises:
        UnsafeModelError: a pickle needs globals outside torch's weights-only
            allowlist, or the archive holds native code or custom objects; names
            the file, the member and what it would run.
        InputError: the file is missing, empty, truncated or not a ``.pt2`` archive.
    """
    from converter.safety import UnsafeModelError

    path = existing_file(source, ".pt2 file saved with torch.export.save")
    try:
        if unsafe_load:
            return torch.export.load(str(path))
        return _load_pt2_weights_only(path)
    except InputError:
        raise
    except Exception as e:
        if isinstance(e, UnsafeModelError):
            raise
        raise InputError(f"{path}: not a readable ExportedProgram ({first_line(e)})", "re-save it with torch.export.save") from None


def _load_pt2_weights_only(path: pathlib.Path) -> Any:
    """``torch.export.load`` for model ``model`` of a current-format archive, every pickle weights-only."""
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass
    from torch.export.pt2_archive import _package as pt2
    from torch.export.pt2_archive import constants as names

    with pt2.PT2ArchiveReader(str(path)) as reader:
        members = reader.get_file_names()
        native = [m for m in members if m.startswith((names.AOTINDUCTOR_DIR, names.EXECUTORCH_DIR, names.MTIA_DIR))]
        if native:
            _refuse_pt2(path, native[0], "compiled native code (AOTInductor/ExecuTorch), loaded as a shared library")
        if names.ARCHIVE_VERSION_PATH not in members or reader.read_string(names.ARCHIVE_VERSION_PATH) != names.ARCHIVE_VERSION_VALUE:
            raise InputError(f"{path}: not a current torch.export archive (no or another archive version)",
                             "re-save it with torch.export.save from this torch version")
        model_file = names.MODELS_FILENAME_FORMAT.format("model")
        if model_file not in members:
            raise InputError(f"{path}: the archive holds no program named 'model'", "re-save it with torch.export.save")
        program = _bytes_to_dataclass(schema.ExportedProgram, reader.read_bytes(model_file))
        samples_file = names.SAMPLE_INPUTS_FILENAME_FORMAT.format("model")
        samples = reader.read_bytes(samples_file) if samples_file in members else b""
        state_dict = _pt2_payloads(path, reader, members, names.WEIGHTS_DIR, names.WEIGHTS_CONFIG_FILENAME_FORMAT)
        constants = _pt2_payloads(path, reader, members, names.CONSTANTS_DIR, names.CONSTANTS_CONFIG_FILENAME_FORMAT)
        examples = _weights_only(path, samples_file, samples) if samples else None
    return ExportedProgramDeserializer().deserialize(program, state_dict, constants, examples)


def _pt2_payloads(path: pathlib.Path, reader: Any, members: list[str], directory: str, config_format: str) -> dict[str, Any]:
    """The weights or constants of a ``.pt2``: raw tensors as stored, pickled ones weights-only."""
    from torch.export.pt2_archive import _package as pt2
    from torch.export.pt2_archive import constants as names

    config_file = config_format.format("model")
    if config_file not in members:
        legacy = f"{directory}model.pt"
        if legacy in members:  # torch <= 2.7 stored one pickled dict
            return _weights_only(path, legacy, reader.read_bytes(legacy))
        raise InputError(f"{path}: {config_file} is missing from the archive", "re-save it with torch.export.save")
    config = pt2._load_payload_config(reader, config_file)
    raw = pt2._build_file_map(reader, config, directory)  # skips pickled payloads: reads bytes only
    out: dict[str, Any] = {}
    for fqn, meta in config.config.items():
        member = os.path.join(directory, meta.path_name)
        if meta.path_name.startswith((names.CUSTOM_OBJ_FILENAME_PREFIX, names.OPAQUE_OBJ_FILENAME_PREFIX)):
            _refuse_pt2(path, member, f"a pickled Python/TorchScript object for constant {fqn!r}")
        if meta.use_pickle:
            out[fqn] = _weights_only(path, member, reader.read_bytes(member))
            continue
        tensor = torch.as_strided(raw[meta.path_name], pt2.deserialize_size(meta.tensor_meta.sizes),
                                  pt2.deserialize_stride(meta.tensor_meta.strides),
                                  pt2.deserialize_storage_offset(meta.tensor_meta.storage_offset))
        out[fqn] = torch.nn.Parameter(tensor, requires_grad=meta.tensor_meta.requires_grad) if meta.is_param else tensor
    return out


def _weights_only(path: pathlib.Path, member: str, data: bytes) -> Any:
    """``torch.load(..., weights_only=True)`` of one archive member; a disallowed global is a refusal."""
    import io
    import pickle

    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f"a pickle that calls {found.group(1)}" if found else f"a pickle torch's weights-only loader refuses ({first_line(e)})"
        _refuse_pt2(path, member, what)


def _refuse_pt2(path: pathlib.Path, member: str, what: str) -> None:
    from converter.safety import UNSAFE_FLAG, UnsafeModelError

    raise UnsafeModelError(f"{path}: refusing to load: {member} is {what}", f"if you trust this file, pass {UNSAFE_FLAG}")


def saved_dim_names(source: Any) -> list[list[str | None]] | None:
    """The user's names for the dynamic dims of a ``.pt2``, per user input and axis, if saved.

    ``torch.export.save`` keeps each dim's range but not the name of its
    ``Dim`` (the program only knows ``s0``, ``s1``). A file saved with torch's
    own record of the ``dynamic_shapes`` in its extra files keeps them::

        from torch._export.serde.dynamic_shapes import _dump_dynamic_shapes
        record = _dump_dynamic_shapes(dynamic_shapes, args, kwargs, to_dict=True)
        torch.export.save(ep, path, extra_files={"dynamic_shapes.json": json.dumps(record)})

    Only that JSON member is read (never a pickle). ``None`` when the file has
    none or it does not have that form.

    Example: ``{"dynamic_shapes": [["batch", "seq"]], "dims": {"batch": ..., "seq": ...}}``
    gives ``[["batch", "seq"]]``; a static dim gives ``None`` at its axis.
    """
    from torch.export.pt2_archive import _package as pt2
    from torch.export.pt2_archive import constants as names

    member = names.EXTRA_DIR + DYNAMIC_SHAPES_FILE
    try:
        with pt2.PT2ArchiveReader(str(source)) as reader:
            if member not in reader.get_file_names():
                return None
            record = json.loads(reader.read_string(member))
    except Exception:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("dims"), dict):
        return None
    dims = set(record["dims"])
    return [[d if d in dims else None for d in leaf] for leaf in _leaves(record.get("dynamic_shapes"))]


def _leaves(spec: Any) -> list[list[Any]]:
    """The per-tensor dim lists of a dumped ``dynamic_shapes`` tree, in input order."""
    if isinstance(spec, dict):
        return [leaf for v in spec.values() for leaf in _leaves(v)]
    if not isinstance(spec, list):
        return [[]]  # a tensor with no dynamic dims (None)
    if all(not isinstance(d, list | dict) for d in spec) and spec:
        return [spec]
    return [leaf for v in spec for leaf in _leaves(v)]


def existing_file(source: Any, what: str) -> pathlib.Path:
    """``source`` as a path to a non-empty file, else an ``InputError`` asking for ``what``."""
    path = pathlib.Path(os.fspath(source))
    if not path.is_file():
        raise InputError(f"{path}: not a file", f"give the path of a {what}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty", f"give the path of a {what}")
    return path


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when empty)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
