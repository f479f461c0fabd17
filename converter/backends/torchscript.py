"""TorchScript back end: IR -> generated ``nn.Module`` source -> ``torch.jit.script`` -> ``.pt``.

The generated module is readable Python: weights and tensor constants are
buffers, and ``forward`` has one line per IR node calling the kernel of
``kernels/torch`` registered for that op at the model's opset, with a comment
naming the node and its source name. ``If`` becomes an ``if``/``else`` and
``Loop`` a ``while`` loop, inline. The module is compiled with
``torch.jit.script`` (not traced), so symbolic dims and control flow stay
dynamic, and the compiled kernels travel inside the saved file: it loads with
plain ``torch.jit.load`` where crossgraph is not installed.

Example:
    >>> from converter.backends import torchscript
    >>> torchscript.save(model, pathlib.Path("model.pt"), emit_source=pathlib.Path("model_gen.py"))
    >>> m = torch.jit.load("model.pt"); m.input_names, m.output_names
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import keyword
import math
import os
import pathlib
import re
import sys
import tempfile
import typing
from typing import Any

import ir

_CLASS = "CrossgraphModule"
#: Generated inline (not kernel calls), so that they serve optional tensors and sequences.
_OPTIONAL_OPS = ("Optional", "OptionalHasElement", "OptionalGetElement")
_INT64_MAX = 9223372036854775807


def _literal(value: Any) -> str:
    """Python source for an attribute value."""
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _annotation(value: ir.Value) -> str:
    """The TorchScript type of a value: sequences are lists, optionals ``Optional``."""

    def of(type_: Any) -> str:
        if isinstance(type_, ir.SequenceType):
            return f"list[{of(type_.elem_type)}]"
        if isinstance(type_, ir.OptionalType):
            return f"Optional[{of(type_.elem_type)}]"
        return "Tensor"

    return of(value.type)


class _Writer:
    """Accumulates the generated source of one model."""

    def __init__(self, model: ir.Model) -> None:
        from kernels.executor import Executor

        self.model = model
        self.executor = Executor(model, "cpu")  # checks every op has a kernel; builds tensors
        self.opset = self.executor.opset
        self.names: dict[ir.Value, str] = {}
        self.used: set[str] = {"self", "torch", "Tensor", "_dev"}
        self.imports: dict[Any, str] = {}
        self.buffers: dict[str, Any] = {}
        self.lines: list[str] = []

    # --- naming ------------------------------------------------------------------

    def _fresh(self, base: str) -> str:
        name = re.sub(r"\W", "_", base) or "v"
        if name[0].isdigit() or keyword.iskeyword(name):
            name = "v_" + name
        candidate, n = name, 1
        while candidate in self.used:
            candidate, n = f"{name}_{n}", n + 1
        self.used.add(candidate)
        return candidate

    def var(self, value: ir.Value | None) -> str:
        if value is None:
            return "None"
        if value not in self.names:
            self.names[value] = self._fresh(value.name or "v")
        return self.names[value]

    def buffer(self, base: str, tensor: Any) -> str:
        name = self._fresh("w_" + base)
        self.buffers[name] = tensor
        return f"self.{name}"

    def kernel(self, fn: Any) -> str:
        if fn not in self.imports:
            self.imports[fn] = self._fresh(f"k_{fn.__name__.rstrip('_')}")
        return self.imports[fn]

    # --- emission ----------------------------------------------------------------

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def emit_graph(self, graph: ir.Graph, indent: int) -> None:
        for value in graph.initializers.values():
            self.emit(indent, f"{self.var(value)} = {self.buffer(value.name, weight_tensor(value.const_value))}")
        for node in graph:
            where = ir.source_name(node) or ""
            self.emit(indent, f"# {node.op_type} {node.name or ''}" + (f"  (source: {where})" if where != (node.name or "") else ""))
            if node.op_type == "If":
                self._emit_if(node, indent)
            elif node.op_type == "Loop":
                self._emit_loop(node, indent)
            elif node.op_type == "Scan":
                self._emit_scan(node, indent)
            elif node.op_type == "Identity" and _annotation(node.inputs[0]) != "Tensor":
                self.emit(indent, f"{self.var(node.outputs[0])} = {self.var(node.inputs[0])}  # a sequence or optional")
            elif node.op_type in _OPTIONAL_OPS:
                self._emit_optional(node, indent)
            elif node.op_type == "Constant":
                tensor = self.executor._call_kernel(node, [])[0]
                self.emit(indent, f"{self.var(node.outputs[0])} = {self.buffer(node.outputs[0].name, tensor)}")
            else:
                self._emit_call(node, indent)

    def _emit_call(self, node: ir.Node, indent: int) -> None:
        from kernels.executor import _parameters, _variadic_output, kernel_arguments

        fn = self.executor.table.lookup(node.op_type, self.opset, "cpu")
        args = kernel_arguments(node.op_type, self.opset, [self.var(v) for v in node.inputs])
        while args and args[-1] == "None":
            args.pop()
        parts = [("[" + ", ".join(a) + "]") if isinstance(a, list) else a for a in args]
        for name, attr in node.attributes.items():
            value = self.executor._attribute(attr)
            if attr.type == ir.AttributeType.TENSOR:
                parts.append(f"{name}={self.buffer(node.name or node.op_type, value.cpu())}")
            else:
                parts.append(f"{name}={_literal(value)}")
        if "num_outputs" in _parameters(fn) and "num_outputs" not in node.attributes:
            parts.append(f"num_outputs={len(node.outputs)}")
        call = f"{self.kernel(fn)}({', '.join(parts)})"
        outs = [self.var(v) if v.name else "_" for v in node.outputs]
        returns = inspect.signature(fn).return_annotation
        origin = typing.get_origin(returns)
        if origin is tuple:
            arity = len(typing.get_args(returns))
            outs = outs + ["_"] * (arity - len(outs))
            self.emit(indent, f"{', '.join(outs)} = {call}")
        elif origin is list and _variadic_output(node.op_type, self.opset):
            tmp = self._fresh("parts")
            self.emit(indent, f"{tmp} = {call}")
            for i, name in enumerate(outs):
                if name != "_":
                    self.emit(indent, f"{name} = {tmp}[{i}]")
        else:
            self.emit(indent, f"{outs[0]} = {call}")

    def _emit_optional(self, node: ir.Node, indent: int) -> None:
        """Optional ops inline: the same code serves optional tensors and optional sequences."""
        out = self.var(node.outputs[0])
        value = node.inputs[0] if node.inputs else None
        if node.op_type == "Optional":
            self.emit(indent, f"{out}: {_annotation(node.outputs[0])} = {self.var(value)}")
        elif node.op_type == "OptionalHasElement":
            test = "False" if value is None else f"{self.var(value)} is not None"
            self.emit(indent, f"{out} = torch.tensor({test}, device=_dev)")
        else:  # OptionalGetElement
            self.emit(indent, f"assert {self.var(value)} is not None")
            self.emit(indent, f"{out} = {self.var(value)}")

    def _emit_if(self, node: ir.Node, indent: int) -> None:
        outs = [self.var(v) for v in node.outputs]
        self.emit(indent, f"if bool({self.var(node.inputs[0])}):")
        for branch, header in (("then_branch", None), ("else_branch", "else:")):
            if header:
                self.emit(indent, header)
            graph = node.attributes[branch].value
            self.emit_graph(graph, indent + 1)
            for out, value in zip(outs, graph.outputs, strict=True):
                self.emit(indent + 1, f"{out} = {self.var(value)}")

    def _emit_loop(self, node: ir.Node, indent: int) -> None:
        body: ir.Graph = node.attributes["body"].value
        trip = node.inputs[0] if len(node.inputs) > 0 else None
        cond = node.inputs[1] if len(node.inputs) > 1 else None
        n_carried = len(node.inputs) - 2
        n_scan = len(body.outputs) - 1 - n_carried
        carried = [self.var(v) for v in node.outputs[:n_carried]]
        scans = [self._fresh("scan") for _ in range(n_scan)]
        i, limit, go = self._fresh("i"), self._fresh("trip"), self._fresh("cond")
        self.emit(indent, f"{limit} = {_INT64_MAX if trip is None else f'int({self.var(trip)}.item())'}")
        self.emit(indent, f"{go} = {'True' if cond is None else f'bool({self.var(cond)})'}")
        for out, init, value in zip(carried, node.inputs[2:], node.outputs[:n_carried], strict=True):
            self.emit(indent, f"{out}: {_annotation(value)} = {self.var(init)}")
        for s in scans:
            self.emit(indent, f"{s}: list[Tensor] = []")
        self.emit(indent, f"{i} = 0")
        self.emit(indent, f"while {go} and {i} < {limit}:")
        inner = indent + 1
        self.emit(inner, f"{self.var(body.inputs[0])} = torch.tensor({i}, dtype=torch.int64, device=_dev)")
        self.emit(inner, f"{self.var(body.inputs[1])} = torch.tensor({go}, device=_dev)")
        for value, out in zip(body.inputs[2:], carried, strict=True):
            self.emit(inner, f"{self.var(value)} = {out}")
        self.emit_graph(body, inner)
        self.emit(inner, f"{go} = bool({self.var(body.outputs[0])})")
        for out, value in zip(carried, body.outputs[1 : 1 + n_carried], strict=True):
            self.emit(inner, f"{out} = {self.var(value)}")
        for s, value in zip(scans, body.outputs[1 + n_carried :], strict=True):
            self.emit(inner, f"{s}.append({self.var(value)})")
        self.emit(inner, f"{i} += 1")
        for s, value in zip(scans, node.outputs[n_carried:], strict=True):
            self.emit(indent, f"{self.var(value)} = torch.stack({s}) if len({s}) > 0 else torch.zeros([0], device=_dev)")

    def _emit_scan(self, node: ir.Node, indent: int) -> None:
        """Scan (opset 9+) as a ``for`` loop over the scan axis of its sequence inputs."""
        if self.opset < 9:
            raise NotImplementedError("the TorchScript back end generates Scan from opset 9 (not the batched Scan-8)")
        body: ir.Graph = node.attributes["body"].value
        attrs = {k: self.executor._attribute(a) for k, a in node.attributes.items() if k != "body"}
        m = attrs["num_scan_inputs"]
        n_state = len(node.inputs) - m
        n_out = len(body.outputs) - n_state
        in_axes = attrs.get("scan_input_axes") or [0] * m
        in_dirs = attrs.get("scan_input_directions") or [0] * m
        out_axes = attrs.get("scan_output_axes") or [0] * n_out
        out_dirs = attrs.get("scan_output_directions") or [0] * n_out
        states = [self.var(v) for v in node.outputs[:n_state]]
        for out, init in zip(states, node.inputs[:n_state], strict=True):
            self.emit(indent, f"{out} = {self.var(init)}")
        seqs = []
        for value, axis, reverse in zip(node.inputs[n_state:], in_axes, in_dirs, strict=True):
            seq, src = self._fresh("seq"), self.var(value)
            moved = f"torch.movedim({src}, {axis} % {src}.dim(), 0)"
            self.emit(indent, f"{seq} = {f'torch.flip({moved}, [0])' if reverse else moved}")
            seqs.append(seq)
        scans = [self._fresh("scan") for _ in range(n_out)]
        for s in scans:
            self.emit(indent, f"{s}: list[Tensor] = []")
        t = self._fresh("t")
        self.emit(indent, f"for {t} in range({seqs[0] + '.shape[0]' if seqs else '0'}):")
        inner = indent + 1
        for value, state in zip(body.inputs[:n_state], states, strict=True):
            self.emit(inner, f"{self.var(value)} = {state}")
        for value, seq in zip(body.inputs[n_state:], seqs, strict=True):
            self.emit(inner, f"{self.var(value)} = {seq}[{t}]")
        self.emit_graph(body, inner)
        for state, value in zip(states, body.outputs[:n_state], strict=True):
            self.emit(inner, f"{state} = {self.var(value)}")
        for s, value in zip(scans, body.outputs[n_state:], strict=True):
            self.emit(inner, f"{s}.append({self.var(value)})")
        for s, value, axis, reverse in zip(scans, node.outputs[n_state:], out_axes, out_dirs, strict=True):
            out = self.var(value)
            items = f"{s}[::-1]" if reverse else s
            self.emit(indent, f"{out} = torch.stack({items}) if len({s}) > 0 else torch.zeros([0], device=_dev)")
            self.emit(indent, f"{out} = torch.movedim({out}, 0, {axis} % {out}.dim())")

    # --- the module --------------------------------------------------------------

    def source(self) -> str:
        graph = self.model.graph
        values = [v for v in graph.inputs if not v.is_initializer()]
        inputs = [self.var(v) for v in values]
        tensors = [name for name, v in zip(inputs, values, strict=True) if _annotation(v) == "Tensor"]
        self.emit(2, f"_dev = {tensors[0]}.device" if tensors else "_dev = torch.device('cpu')")
        self.emit_graph(graph, 2)
        body = self.lines
        outs = [self.var(v) for v in graph.outputs]
        types = [_annotation(v) for v in graph.outputs]
        if len(outs) == 1:
            ret, annotation = outs[0], types[0]
        else:
            ret, annotation = "(" + ", ".join(outs) + ",)", "tuple[" + ", ".join(types) + "]"
        in_names = [v.name for v in graph.inputs if not v.is_initializer()]
        out_names = [v.name for v in graph.outputs]
        imports = sorted(f"from {fn.__module__} import {fn.__name__} as {alias}" for fn, alias in self.imports.items())
        params = "".join(f", {name}: {_annotation(v)}" for name, v in zip(inputs, values, strict=True))
        head = [
            f'"""Generated by crossgraph from {graph.name or "an IR model"} (opset {self.opset}).',
            "",
            f"Inputs: {', '.join(in_names)}",
            f"Outputs: {', '.join(out_names)}",
            '"""',
            "",
            "from typing import Optional",
            "",
            "import torch",
            "from torch import Tensor",
            "",
            *imports,
            "",
            "",
            f"class {_CLASS}(torch.nn.Module):",
            "    input_names: list[str]",
            "    output_names: list[str]",
            "",
            "    def __init__(self, weights: dict[str, Tensor]) -> None:",
            "        super().__init__()",
            f"        self.input_names = {in_names!r}",
            f"        self.output_names = {out_names!r}",
            "        for name, tensor in weights.items():",
            "            self.register_buffer(name, tensor)",
            "",
            f"    def forward(self{params}) -> {annotation}:",
        ]
        return "\n".join([*head, *body, f"        return {ret}", ""])


def weight_tensor(tensor: Any) -> Any:
    """An initializer as a CPU torch tensor that shares its memory (no copy).

    Weights of a model loaded from external data are memory-mapped by onnx_ir and
    those from the PyTorch front end are the module's own tensors: both are wrapped
    as they are, so a 2 GB model does not need another 2 GB here. The buffers are
    only read (by ``torch.jit.save`` and the kernels); dtypes torch cannot view
    (bfloat16 from numpy, strings) go through the executor's copying conversion.
    """
    import warnings

    import numpy as np
    import torch

    from kernels.executor import as_tensor

    torch_tensor = getattr(tensor, "raw", None)
    if isinstance(torch_tensor, torch.Tensor):
        return torch_tensor.detach().cpu()
    array = tensor.numpy() if isinstance(tensor, ir.TensorProtocol) else np.asarray(tensor)
    if array.dtype.kind not in "biufc" or not array.flags.c_contiguous:
        return as_tensor(array)
    with warnings.catch_warnings():  # read-only memory maps: torch warns that writing would be undefined
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def generate_source(model: ir.Model) -> str:
    """The readable Python source of the ``nn.Module`` that runs ``model``.

    Raises:
        kernels.executor.MissingKernelsError: some ops have no torch kernel.
        NotImplementedError: the model uses an op the generator cannot inline (Scan).
    """
    return _Writer(model).source()


def build_module(model: ir.Model, *, emit_source: pathlib.Path | None = None) -> Any:
    """The generated module, instantiated with the model's weights (eager, not scripted)."""
    writer = _Writer(model)
    source = writer.source()
    if emit_source is not None:
        pathlib.Path(emit_source).write_text(source)
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    module_name = f"crossgraph_generated_{digest}"
    # inspect.getsource (which torch.jit.script needs) reads the file, so it must exist.
    directory = pathlib.Path(tempfile.gettempdir()) / "crossgraph_generated"
    directory.mkdir(exist_ok=True)
    path = directory / f"{module_name}.py"
    if not path.is_file() or path.read_text() != source:
        # Another thread or process may be importing this very file: replace it whole, never truncate it.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{module_name}-", suffix=".py")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, _CLASS)(writer.buffers)


def script(model: ir.Model, *, emit_source: pathlib.Path | None = None) -> Any:
    """``model`` as a ``torch.jit.ScriptModule`` (see :func:`build_module`)."""
    import torch

    return torch.jit.script(build_module(model, emit_source=emit_source))


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "torchscript",  # noqa: A002
    emit_source: pathlib.Path | None = None,
    **options: Any,
) -> None:
    """Write ``model`` as a TorchScript archive loadable with plain ``torch.jit.load``.

    Args:
        model: the IR model.
        path: the ``.pt`` file to write.
        format: only ``"torchscript"``.
        emit_source: also write the generated Python source there.
        options: none are recognised yet; passing one raises.

    Raises:
        ValueError: another format, or an unknown option.
        kernels.executor.MissingKernelsError: ops without a torch kernel.
    """
    import torch

    if format != "torchscript":
        raise ValueError(f"the TorchScript back end writes 'torchscript', not {format!r}")
    if options:
        raise ValueError(f"unknown TorchScript back-end option(s): {sorted(options)}")
    torch.jit.save(script(model, emit_source=emit_source), str(path))
