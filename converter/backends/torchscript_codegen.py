"""The source generator of the TorchScript back end: IR -> readable ``nn.Module`` source.

One line per IR node. Before writing, the generator does at conversion time what
would otherwise run on every call:

- nodes whose inputs are all constants (initializers, ``Constant``, and results of
  such nodes, e.g. the ``ConstantOfShape`` weights of the onnx light models) are
  computed once with the executor and become buffers, as onnxruntime folds them
  when it opens a session (random ops are never folded);
- an inference ``BatchNormalization`` right after a ``Conv`` with constant weights
  is folded into those weights;
- hot ops with static attributes become the torch call their kernel would make
  (:mod:`converter.backends.torchscript_direct`); the others call their kernel.

Constants are read where they are used (``self.w_<name>``), so the generated
``forward`` stays a list of the model's own operations.
"""

from __future__ import annotations

import inspect
import keyword
import math
import re
import typing
from typing import Any

import ir
from converter.backends.torchscript_direct import DIRECT, conv_call, fold_batch_norm

CLASS = "CrossgraphModule"
#: Generated inline (not kernel calls), so that they serve optional tensors and sequences.
_OPTIONAL_OPS = ("Optional", "OptionalHasElement", "OptionalGetElement")
#: Never computed at conversion time: their result must differ from call to call.
#: Kernel-called ops whose first output has their first input's dtype and rank (for direct calls after them).
_SAME_TYPE_AND_RANK = frozenset((
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "MaxPool",
    "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "LRN", "Relu", "LeakyRelu", "PRelu", "Elu",
    "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softmax", "LogSoftmax", "Clip", "Pad", "Resize",
    "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf", "Gelu", "Mish", "Softplus", "Dropout", "Identity",
))
_NOT_FOLDED = (
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "Dropout", "If", "Loop", "Scan", *_OPTIONAL_OPS,
)
#: List attributes longer than this become module attributes (see Writer.list_attribute).
_LONG_LIST = 64
#: A folded result above this stays a computation: an Expand/Tile/ConstantOfShape that
#: blows a small constant up would otherwise be stored (and held while converting) in full.
_MAX_FOLDED_BYTES = 256 * 2**20


def literal(value: Any) -> str:
    """Python source for an attribute value."""
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def annotation(value: ir.Value) -> str:
    """The TorchScript type of a value: sequences are lists, optionals ``Optional``."""

    def of(type_: Any) -> str:
        if isinstance(type_, ir.SequenceType):
            return f"list[{of(type_.elem_type)}]"
        if isinstance(type_, ir.OptionalType):
            return f"Optional[{of(type_.elem_type)}]"
        return "Tensor"

    return of(value.type)


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


def _unused(value: ir.Value, graph_outputs: set[ir.Value]) -> bool:
    return not value.uses() and value not in graph_outputs


class Writer:
    """Accumulates the generated source of one model (see the module docstring).

    ``freeze``: the source is for a module that will be frozen (plain ``torch.conv2d``
    calls, which torch's freezing passes rewrite, rather than the oneDNN helper).
    """

    def __init__(self, model: ir.Model, *, freeze: bool = False) -> None:
        from kernels.executor import Executor

        self.model = model
        self.freeze = freeze
        self.executor = Executor(model, "cpu")  # checks every op has a kernel; builds tensors
        _refuse_string_labels(model)
        self.opset = self.executor.opset
        self.names: dict[ir.Value, str] = {}
        self.used: set[str] = {"self", "torch", "Tensor", "F", "_dev"}
        self.imports: dict[Any, str] = {}
        self.buffers: dict[str, Any] = {}
        self.lists: dict[str, tuple[str, str]] = {}  # long list attributes: name -> (annotation, how __init__ sets it)
        self.lines: list[str] = []
        self.folded = 0
        self._constants: dict[ir.Value, Any] = {}  # value -> CPU tensor, known at conversion time
        self._buffer_of: dict[ir.Value, str] = {}
        self._attrs: dict[ir.Node, dict[str, Any]] = {}
        self._ranks: dict[ir.Value, int | None] = {}  # learnt from direct calls, where the IR has no shape
        self._dtypes: dict[ir.Value, ir.DataType | None] = {}
        self._outputs: set[ir.Value] = set(model.graph.outputs)
        self._skip: set[ir.Node] = set()  # BatchNormalization nodes folded into their Conv

    # --- what the generator knows about values -----------------------------------

    def attributes(self, node: ir.Node) -> dict[str, Any]:
        """The node's attributes as Python values (tensors as torch tensors)."""
        if node not in self._attrs:
            self._attrs[node] = {k: self.executor._attribute(a) for k, a in node.attributes.items()}
        return self._attrs[node]

    def constant(self, value: ir.Value | None) -> Any:
        """The value as a CPU tensor when it is known at conversion time, else ``None``."""
        if value is None:
            return None
        if value not in self._constants and value.is_initializer() and value.const_value is not None:
            try:
                self._constants[value] = weight_tensor(value.const_value)
            except TypeError:  # strings and dtypes torch lacks stay kernel arguments
                return None
        return self._constants.get(value)

    def dtype(self, value: ir.Value | None) -> ir.DataType | None:
        """The value's element type, when the IR or the propagation of direct calls knows it."""
        if value is None:
            return None
        tensor = self.constant(value)
        if tensor is not None:
            return _ir_dtype(tensor)
        return value.dtype if value.dtype is not None else self._dtypes.get(value)

    def rank(self, value: ir.Value | None) -> int | None:
        if value is None:
            return None
        tensor = self.constant(value)
        if tensor is not None:
            return tensor.dim()
        if value in self._ranks:
            return self._ranks[value]
        return value.shape.rank() if value.shape is not None else None

    # --- naming ------------------------------------------------------------------

    def fresh(self, base: str) -> str:
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
            self.names[value] = self.fresh(value.name or "v")
        return self.names[value]

    def arg(self, value: ir.Value | None, *, conv_weight: bool = False) -> str:
        """How ``forward`` reads a value: its local name, or the buffer of a constant.

        ``conv_weight``: the buffer is stored in the layout the convolution reads (see
        :meth:`conv_weight`), which the first read decides.
        """
        if value is None:
            return "None"
        tensor = self.constant(value)
        if tensor is None:
            return self.var(value)
        if value not in self._buffer_of:
            tensor = self.conv_weight(tensor) if conv_weight else tensor
            self._buffer_of[value] = self.buffer(value.name or "const", tensor)
        return self._buffer_of[value]

    def conv_weight(self, tensor: Any) -> Any:
        """A 2-D convolution's weight in channels-last layout, as oneDNN reads it next to
        channels-last activations (``kernels.torch.nn.conv2d``); else as it is.
        Strides survive ``torch.jit.save``; values and shape are unchanged."""
        import torch

        if self.freeze or tensor.dim() != 4 or tensor.dtype != torch.float32:
            return tensor
        return tensor.contiguous(memory_format=torch.channels_last)

    def buffer(self, base: str, tensor: Any) -> str:
        name = self.fresh("w_" + base)
        self.buffers[name] = tensor
        return f"self.{name}"

    def list_attribute(self, name: str, attr: ir.Attr, value: Any) -> str | None:
        """A long list attribute (a tree ensemble's thousands of node ids) as a module
        attribute that ``__init__`` rebuilds from a buffer: as a literal in the source,
        TorchScript's compiler and its ``__init__`` checker would parse it element by
        element (seconds to minutes for a 100-tree forest). Strings are stored as
        indexes into their (short) vocabulary."""
        import torch

        if attr.type not in (ir.AttributeType.INTS, ir.AttributeType.FLOATS, ir.AttributeType.STRINGS):
            return None
        if len(value) <= _LONG_LIST:
            return None
        attribute = self.fresh("a_" + name)
        if attr.type == ir.AttributeType.STRINGS:
            vocabulary = sorted(set(value))
            index = {word: i for i, word in enumerate(vocabulary)}
            codes = self.buffer(name, torch.tensor([index[v] for v in value], dtype=torch.int64))
            self.lists[attribute] = ("list[str]", f"[{literal(vocabulary)}[i] for i in {codes}.tolist()]")
        else:
            dtype, kind = (torch.int64, "list[int]") if attr.type == ir.AttributeType.INTS else (torch.float64, "list[float]")
            self.lists[attribute] = (kind, f"{self.buffer(name, torch.tensor(list(value), dtype=dtype))}.tolist()")
        return f"self.{attribute}"

    def kernel(self, fn: Any) -> str:
        if fn not in self.imports:
            self.imports[fn] = self.fresh(f"k_{fn.__name__.rstrip('_')}")
        return self.imports[fn]

    # --- conversion-time work ----------------------------------------------------

    def fold_constants(self, graph: ir.Graph) -> None:
        """Computes every node whose inputs are all constants (see the module docstring)."""
        for node in graph:
            if node.op_type in _NOT_FOLDED or node.domain not in ("", "ai.onnx"):
                continue
            if any(annotation(v) != "Tensor" for v in node.outputs):
                continue
            args = [self.constant(v) for v in node.inputs]
            if any(a is None and v is not None for a, v in zip(args, node.inputs, strict=True)):
                continue
            if any(a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS) for a in node.attributes.values()):
                continue
            try:
                results = self.executor._call_kernel(node, args)
            except Exception:  # noqa: BLE001 - left to run (and fail, with the node named) at run time
                continue
            too_big = any(hasattr(r, "dim") and r.numel() * r.element_size() > _MAX_FOLDED_BYTES for r in results)
            if all(hasattr(r, "dim") for r in results) and len(results) >= len(node.outputs) and not too_big:
                for value, result in zip(node.outputs, results, strict=False):
                    self._constants[value] = result.detach().cpu()
                self.folded += 1

    def _batch_norm_after(self, conv: ir.Node) -> ir.Node | None:
        """The inference BatchNormalization that alone reads this Conv's output, if any."""
        out = conv.outputs[0]
        uses = list(out.uses())
        if len(uses) != 1 or out in self._outputs or uses[0].idx != 0:
            return None
        bn = uses[0].node
        if bn.op_type != "BatchNormalization" or any(not _unused(v, self._outputs) for v in bn.outputs[1:]):
            return None
        return bn

    # --- emission ----------------------------------------------------------------

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def emit_graph(self, graph: ir.Graph, indent: int) -> None:
        for node in graph:
            if node in self._skip or all(v in self._constants for v in node.outputs):
                continue  # folded at conversion time (a BatchNormalization into its Conv's line)
            where = ir.source_name(node) or ""
            self.emit(indent, f"# {node.op_type} {node.name or ''}" + (f"  (source: {where})" if where != (node.name or "") else ""))
            if node.op_type in _CONTROL_FLOW:
                _CONTROL_FLOW[node.op_type](self, node, indent)
            elif node.op_type == "Identity" and annotation(node.inputs[0]) != "Tensor":
                self.emit(indent, f"{self.var(node.outputs[0])} = {self.var(node.inputs[0])}  # a sequence or optional")
            elif node.op_type in _OPTIONAL_OPS:
                self._emit_optional(node, indent)
            elif not self._emit_direct(node, indent):
                self._emit_call(node, indent)

    def _emit_direct(self, node: ir.Node, indent: int) -> bool:
        """Writes the node as a direct torch call (:mod:`torchscript_direct`); False if it cannot."""
        emitter = DIRECT.get(node.op_type)
        if emitter is None or node.domain not in ("", "ai.onnx") or not node.outputs:
            return False
        if any(not _unused(v, self._outputs) for v in node.outputs[1:]):
            return False
        out = node.outputs[0]
        if node.op_type == "Conv" and (bn := self._batch_norm_after(node)) is not None:
            fused = fold_batch_norm(self, node, bn)
            if fused is not None:
                return self._emit_conv_bn(node, bn, fused, indent)
        emitted = emitter(self, node)
        if emitted is None:
            return False
        expression, self._ranks[out] = emitted
        # Every direct op keeps its data input's dtype (Conv, Gemm, MatMul: the weight's too).
        self._dtypes[out] = self.dtype(node.inputs[0]) or self.dtype(node.inputs[1] if len(node.inputs) > 1 else None)
        self.emit(indent, f"{self.var(out)} = {expression}")
        return True

    def _emit_conv_bn(self, conv: ir.Node, bn: ir.Node, fused: tuple[Any, Any], indent: int) -> bool:
        if conv_call(self, conv, "", "") is None:
            return False
        name = conv.inputs[1].name or "conv"
        weight, bias = self.buffer(name + "_bn", self.conv_weight(fused[0])), self.buffer(name + "_bn_bias", fused[1])
        emitted = conv_call(self, conv, weight, bias)
        if emitted is None:
            return False
        out = bn.outputs[0]
        self._ranks[out], self._dtypes[out] = emitted[1], ir.DataType.FLOAT
        self.emit(indent, f"{self.var(out)} = {emitted[0]}  # with BatchNormalization {bn.name or ''} folded in")
        self._skip.add(bn)
        return True

    def _emit_call(self, node: ir.Node, indent: int) -> None:
        from kernels.executor import _parameters, _variadic_output, kernel_arguments, kernel_op

        op, version = kernel_op(self.executor.model, node)
        fn = self.executor.table.lookup(op, version, "cpu")
        args = kernel_arguments(op, version, [self.arg(v) for v in node.inputs])
        while args and args[-1] == "None":
            args.pop()
        parts = [("[" + ", ".join(a) + "]") if isinstance(a, list) else a for a in args]
        for name, attr in node.attributes.items():
            value = self.attributes(node)[name]
            if attr.type == ir.AttributeType.TENSOR:
                parts.append(f"{name}={self.buffer(node.name or node.op_type, value.cpu())}")
            else:
                parts.append(f"{name}={self.list_attribute(name, attr, value) or literal(value)}")
        if "num_outputs" in _parameters(fn) and "num_outputs" not in node.attributes:
            parts.append(f"num_outputs={len(node.outputs)}")
        call = f"{self.kernel(fn)}({', '.join(parts)})"
        if node.op_type in _SAME_TYPE_AND_RANK and node.inputs and node.outputs:
            self._dtypes[node.outputs[0]] = self.dtype(node.inputs[0])
            self._ranks[node.outputs[0]] = self.rank(node.inputs[0])
        outs = [self.var(v) if v.name else "_" for v in node.outputs]
        returns = inspect.signature(fn).return_annotation
        origin = typing.get_origin(returns)
        if origin is tuple:
            arity = len(typing.get_args(returns))
            outs = outs + ["_"] * (arity - len(outs))
            self.emit(indent, f"{', '.join(outs)} = {call}")
        elif origin is list and _variadic_output(op, version):
            tmp = self.fresh("parts")
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
            self.emit(indent, f"{out}: {annotation(node.outputs[0])} = {self.arg(value)}")
        elif node.op_type == "OptionalHasElement":
            test = "False" if value is None else f"{self.arg(value)} is not None"
            self.emit(indent, f"{out} = torch.tensor({test}, device=_dev)")
        else:  # OptionalGetElement
            self.emit(indent, f"assert {self.arg(value)} is not None")
            self.emit(indent, f"{out} = {self.arg(value)}")

    # --- the module --------------------------------------------------------------

    def source(self) -> str:
        graph = self.model.graph
        self.fold_constants(graph)
        values = [v for v in graph.inputs if not v.is_initializer()]
        inputs = [self.var(v) for v in values]
        tensors = [name for name, v in zip(inputs, values, strict=True) if annotation(v) == "Tensor"]
        self.emit(2, f"_dev = {tensors[0]}.device" if tensors else "_dev = torch.device('cpu')")
        self.emit_graph(graph, 2)
        body = self.lines
        outs = [self.arg(v) for v in graph.outputs]
        types = [annotation(v) for v in graph.outputs]
        if len(outs) == 1:
            ret, result_type = outs[0], types[0]
        else:
            ret, result_type = "(" + ", ".join(outs) + ",)", "tuple[" + ", ".join(types) + "]"
        in_names = [v.name for v in graph.inputs if not v.is_initializer()]
        out_names = [v.name for v in graph.outputs]
        imports = sorted(f"from {fn.__module__} import {fn.__name__} as {alias}" for fn, alias in self.imports.items())
        params = "".join(f", {name}: {annotation(v)}" for name, v in zip(inputs, values, strict=True))
        folded = f"{self.folded} node(s) computed only from constants were folded into buffers."
        head = [
            f'"""Generated by crossgraph from {graph.name or "an IR model"} (opset {self.opset}).',
            "",
            f"Inputs: {', '.join(in_names)}",
            f"Outputs: {', '.join(out_names)}",
            *([folded] if self.folded else []),
            '"""',
            "",
            "from typing import Optional",
            "",
            "import torch",
            "import torch.nn.functional as F",
            "from torch import Tensor",
            "",
            *imports,
            "",
            "",
            f"class {CLASS}(torch.nn.Module):",
            "    input_names: list[str]",
            "    output_names: list[str]",
            *(f"    {attribute}: {kind}" for attribute, (kind, _) in self.lists.items()),
            "",
            "    def __init__(self, weights: dict[str, Tensor]) -> None:",
            "        super().__init__()",
            f"        self.input_names = {in_names!r}",
            f"        self.output_names = {out_names!r}",
            "        for name, tensor in weights.items():",
            "            self.register_buffer(name, tensor)",
            *(f"        self.{attribute} = {init}" for attribute, (_, init) in self.lists.items()),
            "",
            f"    def forward(self{params}) -> {result_type}:",
        ]
        return "\n".join([*head, *body, f"        return {ret}", ""])


def _refuse_string_labels(model: ir.Model) -> None:
    """ai.onnx.ml nodes whose labels, keys or categories are strings have kernels for their
    numeric forms only (torch has no string tensors): refuse them all at once, with the reason.

    Raises:
        converter.errors.UnsupportedOpsError: some such node exists.
    """
    found = [
        (f"ai.onnx.ml::{node.op_type}", ir.source_name(node) or node.name or "")
        for node in ir.traversal.RecursiveGraphIterator(model.graph)
        if node.domain == "ai.onnx.ml"
        and any(a.type == ir.AttributeType.STRINGS and k.endswith("_strings") for k, a in node.attributes.items())
    ]
    if found:
        from converter.errors import UnsupportedOpsError

        raise UnsupportedOpsError(
            "ONNX (for the TorchScript back end)", found,
            hint="their labels, keys or categories are strings, which torch tensors cannot hold; "
            "re-export with integer class labels (encode the classes before fitting)",
        )


def _ir_dtype(tensor: Any) -> ir.DataType | None:
    """The ONNX element type of a torch tensor (the common numeric ones)."""
    import torch

    table = {
        torch.float32: ir.DataType.FLOAT, torch.float64: ir.DataType.DOUBLE, torch.float16: ir.DataType.FLOAT16,
        torch.bfloat16: ir.DataType.BFLOAT16, torch.int8: ir.DataType.INT8, torch.int16: ir.DataType.INT16,
        torch.int32: ir.DataType.INT32, torch.int64: ir.DataType.INT64, torch.uint8: ir.DataType.UINT8,
        torch.bool: ir.DataType.BOOL,
    }
    return table.get(tensor.dtype)


from converter.backends.torchscript_control import CONTROL_FLOW as _CONTROL_FLOW  # noqa: E402
