"""Getting a core-ATen ExportedProgram from each PyTorch source.

| source | route |
|---|---|
| ``nn.Module`` + inputs, ``"pkg.module:factory"`` | ``torch.export.export`` (non-strict by default) |
| ``ExportedProgram``, ``.pt2`` | as is / :func:`load_pt2` (weights-only unpickling) |
| ``ScriptModule``, ``.pt``/``.pth`` | ``TS2EPConverter``, re-exported when dims are dynamic |

Input specs (``InputSpec(name, shape, dtype)``) give example tensors and
``dynamic_shapes``: each symbol name becomes one ``torch.export.Dim``, shared by
every input that names it. The program is then decomposed to core ATen, keeping
the higher-level ops in :data:`KEEP` that translate to better ONNX.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

import ir
from converter.errors import InputError
from converter.inputs import InputSpec

_aten = torch.ops.aten

#: Ops kept undecomposed: each has a direct ONNX counterpart (and LSTM/GRU would
#: otherwise unroll over time steps).
KEEP = (
    _aten.linear.default,  # Gemm / MatMul + Add, no reshapes around batch dims
    _aten.matmul.default,  # MatMul broadcasts as matmul does
    _aten.layer_norm.default,  # LayerNormalization
    _aten.scaled_dot_product_attention.default,
    _aten.lstm.input,  # LSTM (its decomposition unrolls the time steps)
    _aten.gru.input,  # GRU
    _aten.hardswish.default,  # HardSwish
    _aten.hardsigmoid.default,  # HardSigmoid
    _aten.mish.default,  # Mish
    _aten.logsumexp.default,  # ReduceLogSumExp
    _aten.tril.default,  # Trilu (not an iota-compare-where pattern)
    _aten.triu.default,  # Trilu
)

_HINT_INPUTS = "give example inputs (tensors) or input specs, e.g. --input x:batch x 3 x 224 x 224"


@dataclasses.dataclass
class Program:
    """An ExportedProgram and what the translation needs to name things.

    Attributes:
        ep: the decomposed program.
        input_names: the user's names for the program's tensor inputs, in order.
        symbols: the export's symbol (``s0``) -> the user's name (``batch``).
        output_names: names of the user outputs.
    """

    ep: torch.export.ExportedProgram
    input_names: list[str]
    symbols: dict[str, str]
    output_names: list[str]


@dataclasses.dataclass
class Examples:
    """Example inputs and the dynamic shapes and names derived from them."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    names: list[str] | None
    dynamic_shapes: Any
    symbol_names: dict[tuple[int, int], str]  # (input index, axis) -> symbol


def exported_program(source: Any, *, format: str, inputs: Any = None, **options: Any) -> Program:
    """Export (or load, or convert) ``source`` and decompose it to core ATen.

    Args:
        source: see :func:`converter.frontends.torch.load`.
        format: ``"torch"``, ``"exported_program"`` or ``"torchscript"``.
        inputs: example inputs or input specs.
        options: ``strict`` (bool, default False) for ``torch.export``;
            ``dynamic_shapes`` passed through when example tensors are given;
            ``unsafe_load`` (default False) loads ``.pt2`` files with
            ``torch.export.load``, whose unpickling can run code (see :func:`load_pt2`).

    Raises:
        InputError: the source is missing or unreadable, inputs are needed but
            absent, or the export fails.
        UnsafeModelError: a ``.pt2`` needs code to load and ``unsafe_load`` is off.
    """
    examples = make_examples(inputs, options.get("dynamic_shapes"))
    if format == "exported_program":
        ep = _load_pt2(source, bool(options.get("unsafe_load")))
        input_names = _user_input_names(ep)
    elif format == "torchscript":
        ep, input_names = _from_torchscript(_load_torchscript(source), examples, options)
    elif format == "torch":
        ep, input_names = _from_object(source, examples, options)
    else:
        raise InputError(f"the PyTorch front end does not read format {format!r}")
    if examples is not None and examples.names:
        input_names = examples.names
    try:
        ep = ep.run_decompositions(_decomposition_table())
    except Exception as e:
        raise InputError(f"decomposing the exported program to core ATen failed: {_first_line(e)}") from e
    symbols = _symbol_map(ep, input_names, examples)
    return Program(ep, input_names, symbols, _output_names(ep))


# ---- example inputs ----------------------------------------------------------


def make_examples(inputs: Any, dynamic_shapes: Any = None) -> Examples | None:
    """Example args, names and dynamic shapes from tensors, a dict, or input specs."""
    if inputs is None:
        return None
    if isinstance(inputs, Mapping):
        kwargs = {k: _as_tensor(v) for k, v in inputs.items()}
        return Examples((), kwargs, list(kwargs), dynamic_shapes, {})
    if isinstance(inputs, torch.Tensor | np.ndarray):
        inputs = [inputs]
    items = list(inputs)
    if items and all(isinstance(i, InputSpec) for i in items):
        return _examples_from_specs(items)
    if any(isinstance(i, InputSpec) for i in items):
        raise InputError("mix of input specs and example tensors", "give one or the other")
    return Examples(tuple(_as_tensor(v) for v in items), {}, None, dynamic_shapes, {})


def _as_tensor(value: Any) -> Any:
    return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value


def _examples_from_specs(specs: Sequence[InputSpec]) -> Examples:
    """Tensors of the specs' shapes; each symbol gets one ``Dim`` and a distinct size >= 2."""
    static = {d for s in specs for d in (s.shape or ()) if isinstance(d, int)}
    dims: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    args, dynamic, names = [], [], {}
    for i, spec in enumerate(specs):
        if spec.shape is None:
            raise InputError(f"input spec {spec.name!r} has no shape", _HINT_INPUTS)
        shape, axes = [], {}
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int):
                shape.append(d)
                continue
            symbol = d if isinstance(d, str) else ir.default_symbol(spec.name, axis)
            if symbol not in dims:
                dims[symbol] = torch.export.Dim(symbol, min=1)
                sizes[symbol] = next(n for n in range(2, 64) if n not in static and n not in sizes.values())
            shape.append(sizes[symbol])
            axes[axis] = dims[symbol]
            names[(i, axis)] = symbol
        args.append(_random_tensor(shape, spec.dtype))
        dynamic.append(axes or None)
    return Examples(tuple(args), {}, [s.name for s in specs], tuple(dynamic), names)


def _random_tensor(shape: list[int], dtype: str) -> torch.Tensor:
    torch_dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    if torch_dtype.is_floating_point:
        return torch.randn(shape, generator=gen).to(torch_dtype)
    if torch_dtype == torch.bool:
        return torch.zeros(shape, dtype=torch.bool)
    return torch.randint(0, 2, shape, generator=gen, dtype=torch_dtype)


# ---- sources -----------------------------------------------------------------


def _from_object(source: Any, examples: Examples | None, options: dict[str, Any]) -> tuple[Any, list[str]]:
    if isinstance(source, str):
        source = call_factory(source)
    if isinstance(source, torch.export.ExportedProgram):
        return source, _user_input_names(source)
    if isinstance(source, torch.jit.ScriptModule | torch.jit.ScriptFunction):
        return _from_torchscript(source, examples, options)
    if isinstance(source, torch.nn.Module):
        if examples is None:
            raise InputError(f"a {type(source).__name__} needs example inputs to be exported", _HINT_INPUTS)
        ep = _export(source, examples, options)
        return ep, _user_input_names(ep)
    raise InputError(
        f"cannot convert a {type(source).__name__} with the PyTorch front end",
        "give an nn.Module, ExportedProgram, ScriptModule or 'package.module:factory'",
    )


def call_factory(spec: str) -> Any:
    """Import ``package.module:function`` and call it."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"bad model factory {spec!r}", "write it as package.module:function")
    # Like `python -m`, the current directory is importable (the console script's sys.path lacks it).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise InputError(f"cannot import model factory {spec!r}: {e}",
                         "run from the directory that holds the package, or put it on PYTHONPATH") from None
    try:
        return factory()
    except Exception as e:
        raise InputError(f"model factory {spec!r} failed: {type(e).__name__}: {e}") from None


def _export(module: torch.nn.Module, examples: Examples, options: dict[str, Any]) -> Any:
    """``torch.export.export`` in eval mode (the training flag is restored after)."""
    training = module.training
    _set_training(module, False)
    try:
        return torch.export.export(
            module,
            examples.args,
            examples.kwargs or None,
            dynamic_shapes=examples.dynamic_shapes,
            strict=bool(options.get("strict", False)),
        )
    except Exception as e:
        raise InputError(f"torch.export failed: {_first_line(e)}", "check the input shapes and symbols") from e
    finally:
        _set_training(module, training)


def _set_training(module: torch.nn.Module, mode: bool) -> None:
    """``module.train(mode)``, where allowed (an ExportedProgram's module refuses it)."""
    try:
        module.train(mode)
    except NotImplementedError:
        pass


def _load_pt2(source: Any, unsafe_load: bool = False) -> Any:
    if isinstance(source, torch.export.ExportedProgram):
        return source
    return load_pt2(source, unsafe_load=unsafe_load)


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

    path = _existing_file(source, ".pt2 file saved with torch.export.save")
    try:
        if unsafe_load:
            return torch.export.load(str(path))
        return _load_pt2_weights_only(path)
    except InputError:
        raise
    except Exception as e:
        if isinstance(e, UnsafeModelError):
            raise
        raise InputError(f"{path}: not a readable ExportedProgram ({_first_line(e)})", "re-save it with torch.export.save") from None


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
        what = f"a pickle that calls {found.group(1)}" if found else f"a pickle torch's weights-only loader refuses ({_first_line(e)})"
        _refuse_pt2(path, member, what)


def _refuse_pt2(path: pathlib.Path, member: str, what: str) -> None:
    from converter.safety import UNSAFE_FLAG, UnsafeModelError

    raise UnsafeModelError(f"{path}: refusing to load: {member} is {what}", f"if you trust this file, pass {UNSAFE_FLAG}")


def _load_torchscript(source: Any) -> Any:
    if isinstance(source, torch.jit.ScriptModule | torch.jit.ScriptFunction):
        return source
    path = _existing_file(source, ".pt file saved with torch.jit.save")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise InputError(f"{path}: not a readable TorchScript archive ({_first_line(e)})", "re-save it with torch.jit.save") from None


def _from_torchscript(ts: Any, examples: Examples | None, options: dict[str, Any]) -> tuple[Any, list[str]]:
    """TorchScript -> ExportedProgram; re-exported with ``dynamic_shapes`` if any dim is symbolic."""
    if examples is None:
        raise InputError("a TorchScript model has no input signature: example inputs are needed", _HINT_INPUTS)
    from torch._export.converter import TS2EPConverter

    names = _torchscript_arg_names(ts)
    try:
        ep = TS2EPConverter(ts, examples.args, examples.kwargs or None).convert()
    except Exception as e:
        raise InputError(f"converting TorchScript to an ExportedProgram failed: {_first_line(e)}") from e
    if examples.dynamic_shapes is not None:
        ep = _export(ep.module(), examples, options)
    return ep, names or _user_input_names(ep)


def _torchscript_arg_names(ts: Any) -> list[str]:
    try:
        schema = ts.forward.schema if hasattr(ts, "forward") else ts.schema
    except Exception:
        return []
    return [a.name for a in schema.arguments if a.name != "self"]


def _existing_file(source: Any, what: str) -> pathlib.Path:
    path = pathlib.Path(os.fspath(source))
    if not path.is_file():
        raise InputError(f"{path}: not a file", f"give the path of a {what}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty", f"give the path of a {what}")
    return path


# ---- after export -------------------------------------------------------------


def _decomposition_table() -> dict[Any, Any]:
    table = torch.export.default_decompositions()
    for op in KEEP:
        table.pop(op, None)
    return table


def _user_input_names(ep: Any) -> list[str]:
    return [spec.arg.name for spec in ep.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]


def _symbol_map(ep: Any, input_names: list[str], examples: Examples | None) -> dict[str, str]:
    """The export's symbols (``s0``) -> the user's names, or ``ir.default_symbol`` names."""
    given = examples.symbol_names if examples is not None else {}
    symbols: dict[str, str] = {}
    user = [n for n, s in zip(_placeholders(ep), ep.graph_signature.input_specs, strict=True) if s.kind.name == "USER_INPUT"]
    for i, node in enumerate(user):
        val = node.meta.get("val")
        name = input_names[i] if i < len(input_names) else node.name
        for axis, d in enumerate(getattr(val, "shape", ())):
            if isinstance(d, torch.SymInt) and d.node.expr.is_Symbol:
                symbol = d.node.expr.name
                symbols.setdefault(symbol, given.get((i, axis)) or ir.default_symbol(name, axis))
    return symbols


def _placeholders(ep: Any) -> list[Any]:
    return [n for n in ep.graph.nodes if n.op == "placeholder"]


def _output_names(ep: Any) -> list[str]:
    """``output`` for one output, ``output_<i>`` for several, the keys of a flat dict."""
    n = sum(1 for s in ep.graph_signature.output_specs if s.kind.name == "USER_OUTPUT")
    spec = ep.call_spec.out_spec
    if spec is not None and spec.type is dict and spec.num_leaves == n and all(c.is_leaf() for c in spec.children()):
        return [str(k) for k in spec.context]
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
