"""Getting a core-ATen ExportedProgram from each PyTorch source.

| source | route |
|---|---|
| ``nn.Module`` + inputs, ``"pkg.module:factory"`` | ``torch.export.export`` (non-strict by default) |
| ``ExportedProgram``, ``.pt2`` | as is / :func:`~converter.frontends.torch.pt2.load_pt2` (weights-only unpickling) |
| ``ScriptModule``, ``.pt``/``.pth`` | ``TS2EPConverter``, re-exported when dims are dynamic |

Input specs (``InputSpec(name, shape, dtype, bounds)``) give example tensors and
``dynamic_shapes``: each symbol name becomes one ``torch.export.Dim`` with the
spec's range, shared by every input that names it (see
:mod:`~converter.frontends.torch.symbols`). The program is then decomposed to
core ATen, keeping the higher-level ops in :data:`KEEP` that translate to better ONNX.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

import ir
from converter.errors import InputError, NotYetSupportedError
from converter.frontends.torch.masks import eager_padding_zeros, explicit_causal_masks
from converter.frontends.torch.pt2 import (  # load_pt2 re-exported: runners.py and tests import it from here
    existing_file,
    first_line,
    load_pt2,
    saved_dim_names,
)
from converter.frontends.torch.recurrent import routed_recurrent
from converter.frontends.torch.symbols import (
    constraint_error,
    dim_names,
    example_size,
    make_dim,
    model_imposed_bounds,
    symbol_ranges,
)
from converter.inputs import Bound, InputSpec, symbol_bounds

_aten = torch.ops.aten

#: Ops kept undecomposed: each has a direct ONNX counterpart (and LSTM/GRU/RNN would
#: otherwise unroll over time steps; modules exported live use ``crossgraph::`` ops instead).
KEEP = (
    _aten.linear.default,  # Gemm / MatMul + Add, no reshapes around batch dims
    _aten.matmul.default,  # MatMul broadcasts as matmul does
    _aten.layer_norm.default,  # LayerNormalization
    _aten.scaled_dot_product_attention.default,
    _aten.lstm.input,  # LSTM (its decomposition unrolls the time steps)
    _aten.gru.input,  # GRU
    _aten.rnn_tanh.input,  # RNN
    _aten.rnn_relu.input,  # RNN (activations=Relu)
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
        bounds: the range of each named symbol, as torch.export settled it.
    """

    ep: torch.export.ExportedProgram
    input_names: list[str]
    symbols: dict[str, str]
    output_names: list[str]
    bounds: dict[str, Bound] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Examples:
    """Example inputs and the dynamic shapes and names derived from them."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    names: list[str] | None
    dynamic_shapes: Any
    symbol_names: dict[tuple[int, int], str]  # (input index, axis) -> symbol
    specs: list[InputSpec] | None = None  # the specs the examples were made from


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
    # NOTE: opt_einsum picks an einsum's contraction order from the example's sizes, and
    # torch.export guards on that choice (an einsum of three operands fixed every dim);
    # contracting left to right, as torch does without it, keeps the dims dynamic.
    with torch.backends.opt_einsum.flags(enabled=False):
        return _exported_program(source, format=format, inputs=inputs, **options)


def _exported_program(source: Any, *, format: str, inputs: Any, **options: Any) -> Program:  # noqa: A002
    examples = make_examples(inputs, options.get("dynamic_shapes"))
    named: dict[tuple[int, int], str] = {}
    if format == "exported_program":
        ep = _load_pt2(source, bool(options.get("unsafe_load")))
        input_names = _user_input_names(ep)
        named = _saved_names(source)
    elif format == "torchscript":
        ep, input_names = _from_torchscript(_load_torchscript(source), examples, options)
    elif format == "torch":
        ep, input_names = _from_object(source, examples, options)
    else:
        raise InputError(f"the PyTorch front end does not read format {format!r}")
    if examples is not None and examples.names:
        input_names = examples.names
    if examples is not None:
        named.update(examples.symbol_names)  # the user's names win over saved ones
    recovered = dim_names(ep)
    try:
        ep = ep.run_decompositions(_decomposition_table())
    except Exception as e:
        raise InputError(f"decomposing the exported program to core ATen failed: {first_line(e)}") from e
    _refuse_buffer_updates(ep)  # mutations show as such only in the decomposed (functional) program
    symbols = _symbol_map(ep, input_names, named, recovered)
    return Program(ep, input_names, symbols, _output_names(ep), symbol_ranges(ep, symbols))


# ---- example inputs ----------------------------------------------------------


def make_examples(inputs: Any, dynamic_shapes: Any = None) -> Examples | None:
    """Example args, names and dynamic shapes from tensors, a dict, or input specs."""
    if inputs is None:
        return None
    if isinstance(inputs, Mapping):
        kwargs = {k: _as_tensor(v) for k, v in inputs.items()}
        # Nested values (a tuple, a dict) are several graph inputs: torch.export names them (``pair_0``).
        flat = all(isinstance(v, torch.Tensor) for v in kwargs.values())
        return Examples((), kwargs, list(kwargs) if flat else None, dynamic_shapes, {})
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
    """Tensors of the specs' shapes; each symbol gets one ``Dim`` (with its range) and a distinct size >= 2."""
    static = {d for s in specs for d in (s.shape or ()) if isinstance(d, int)}
    bounds = symbol_bounds(specs)
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
                dims[symbol] = _dim(symbol, bounds.get(symbol))
                sizes[symbol] = example_size(bounds.get(symbol), static | set(sizes.values()))
            shape.append(sizes[symbol])
            axes[axis] = dims[symbol]
            if isinstance(d, str):
                names[(i, axis)] = symbol
        args.append(_random_tensor(shape, spec.dtype))
        dynamic.append(axes or None)
    return Examples(tuple(args), {}, [s.name for s in specs], tuple(dynamic), names, list(specs))


def _dim(symbol: str, bound: Bound | None) -> Any:
    try:
        return make_dim(symbol, bound)
    except Exception as e:  # torch's own checks on a range
        raise InputError(f"bad range for {symbol!r}: {first_line(e)}") from None


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
    """``torch.export.export`` in eval mode (the training flag is restored after).

    A module in train mode is converted as in eval mode (dropout off, batch norm
    on its running statistics), with a warning when that changes its numbers.
    ``nn.TransformerEncoder`` masks are applied as given, and its padded positions
    are zeros where eager inference makes them so (see
    :mod:`~converter.frontends.torch.masks`). Plain LSTM / GRU / RNN submodules
    run as one custom op each during the export (``recurrent.routed_recurrent``),
    so a dynamic sequence length stays dynamic.
    Symbols whose range the model itself limits are retried with that range (at
    most twice; see ``symbols.model_imposed_bounds``); other constraint failures
    become one ``InputError`` with the ``--input`` to use.
    """
    training = module.training
    _warn_train_mode(module)
    _set_training(module, False)
    try:
        with routed_recurrent(module), explicit_causal_masks(), eager_padding_zeros(module):
            return _export_retrying(module, examples, options)
    finally:
        _set_training(module, training)


def _export_retrying(module: torch.nn.Module, examples: Examples, options: dict[str, Any]) -> Any:
    """``torch.export.export``, retried with the ranges the model imposes (at most twice)."""
    for attempt in range(3):
        try:
            return torch.export.export(
                module,
                examples.args,
                examples.kwargs or None,
                dynamic_shapes=examples.dynamic_shapes,
                strict=bool(options.get("strict", False)),
            )
        except Exception as e:
            bounded = model_imposed_bounds(e, examples.specs) if attempt < 2 else None
            if bounded is None:
                raise constraint_error(e, examples.specs) or InputError(
                    f"torch.export failed: {first_line(e)}", "check the input shapes and symbols") from e
            retry = _examples_from_specs(bounded)
            examples = dataclasses.replace(retry, names=examples.names, symbol_names=examples.symbol_names)
    raise AssertionError("unreachable")  # the loop returns or raises


def _warn_train_mode(module: torch.nn.Module) -> None:
    """Warn when submodules in train mode compute differently in eval mode (dropout, batch norm)."""
    changing = [f"{name or 'the model'} ({type(sub).__name__})" for name, sub in module.named_modules()
                if sub.training and _differs_in_eval(sub)]
    if changing:
        shown = ", ".join(changing[:3]) + (f" and {len(changing) - 3} more" if len(changing) > 3 else "")
        warnings.warn(
            f"{shown} in train() mode: converted as in eval() mode (dropout off, batch norm on running "
            "statistics); call .eval() on the model first to silence this", UserWarning, stacklevel=2)


def _differs_in_eval(sub: torch.nn.Module) -> bool:
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.dropout import _DropoutNd

    if isinstance(sub, _DropoutNd):
        return sub.p > 0
    if isinstance(sub, _BatchNorm):
        return sub.track_running_stats
    dropout = getattr(sub, "dropout", 0.0)  # MultiheadAttention, LSTM/GRU/RNN
    return isinstance(dropout, float) and dropout > 0


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


def _saved_names(source: Any) -> dict[tuple[int, int], str]:
    """(user input index, axis) -> the Dim name a ``.pt2`` saved for it (see ``saved_dim_names``)."""
    if isinstance(source, torch.export.ExportedProgram):
        return {}
    saved = saved_dim_names(source) or []
    return {(i, axis): name for i, leaf in enumerate(saved) for axis, name in enumerate(leaf) if name}


def _load_torchscript(source: Any) -> Any:
    if isinstance(source, torch.jit.ScriptModule | torch.jit.ScriptFunction):
        return source
    path = existing_file(source, ".pt file saved with torch.jit.save")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise InputError(f"{path}: not a readable TorchScript archive ({first_line(e)})", "re-save it with torch.jit.save") from None


def _from_torchscript(ts: Any, examples: Examples | None, options: dict[str, Any]) -> tuple[Any, list[str]]:
    """TorchScript -> ExportedProgram; re-exported with ``dynamic_shapes`` if any dim is symbolic."""
    if examples is None:
        raise InputError("a TorchScript model has no input signature: example inputs are needed", _HINT_INPUTS)
    from torch._export.converter import TS2EPConverter

    names = _torchscript_arg_names(ts)
    try:
        ep = TS2EPConverter(ts, examples.args, examples.kwargs or None).convert()
    except Exception as e:
        raise InputError(f"converting TorchScript to an ExportedProgram failed: {first_line(e)}") from e
    if examples.dynamic_shapes is not None:
        ep = _export(ep.module(), examples, options)
    return ep, names or _user_input_names(ep)


def _torchscript_arg_names(ts: Any) -> list[str]:
    try:
        schema = ts.forward.schema if hasattr(ts, "forward") else ts.schema
    except Exception:
        return []
    return [a.name for a in schema.arguments if a.name != "self"]


# ---- after export -------------------------------------------------------------


def _refuse_buffer_updates(ep: Any) -> None:
    """Raise when ``forward`` writes to buffers: a converted model has no state to keep them in."""
    updated = sorted(set(ep.graph_signature.buffers_to_mutate.values()))
    if updated:
        raise NotYetSupportedError(
            f"forward updates buffer(s) {', '.join(updated)} in place; a converted model has no state, so it "
            "would compute every call as the first one",
            "return the new values as outputs and pass the state in as inputs, or remove the update before converting",
        )


def _decomposition_table() -> dict[Any, Any]:
    table = torch.export.default_decompositions()
    for op in KEEP:
        table.pop(op, None)
    return table


def _user_input_names(ep: Any) -> list[str]:
    return [spec.arg.name for spec in ep.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]


def _symbol_map(ep: Any, input_names: list[str], given: dict[tuple[int, int], str], recovered: dict[str, str]) -> dict[str, str]:
    """The export's symbols (``s0``) -> a name for each.

    In order of preference: the name ``given`` for that input and axis (by an
    input spec, or saved in a ``.pt2``), the Dim name torch.export remembers
    (``recovered``), ``ir.default_symbol``.
    """
    symbols: dict[str, str] = {}
    user = [n for n, s in zip(_placeholders(ep), ep.graph_signature.input_specs, strict=True) if s.kind.name == "USER_INPUT"]
    for i, node in enumerate(user):
        val = node.meta.get("val")
        name = input_names[i] if i < len(input_names) else node.name
        for axis, d in enumerate(getattr(val, "shape", ())):
            if isinstance(d, torch.SymInt) and d.node.expr.is_Symbol:
                symbol = d.node.expr.name
                symbols.setdefault(symbol, given.get((i, axis)) or recovered.get(symbol) or ir.default_symbol(name, axis))
    return symbols


def _placeholders(ep: Any) -> list[Any]:
    return [n for n in ep.graph.nodes if n.op == "placeholder"]


def _output_names(ep: Any) -> list[str]:
    """``output`` for one output, ``output_<i>`` for several, the keys of a flat dict or the fields of a NamedTuple."""
    n = sum(1 for s in ep.graph_signature.output_specs if s.kind.name == "USER_OUTPUT")
    spec = ep.call_spec.out_spec
    if spec is not None and spec.num_leaves == n and all(c.is_leaf() for c in spec.children()):
        if spec.type is dict:
            return [str(k) for k in spec.context]
        # a NamedTuple: pytree's spec holds the class as its context
        fields = getattr(spec.context, "_fields", None) if isinstance(spec.context, type) else None
        if fields is not None and len(fields) == n:
            return [str(f) for f in fields]
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]
