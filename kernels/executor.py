"""Run an ``ir.Model`` on a kernel table, on CPU or CUDA.

The executor walks the graph in order and calls, for each node, the kernel that
the runtime's table registers for the node's op at the model's opset (a kernel
registered for the device wins over the common one). Initializers and
``Constant`` nodes become tensors on the device; ``If``, ``Loop``, ``Scan`` and
``SequenceMap`` run their subgraphs here, and subgraphs see the values of the scopes around
them (outer-scope captures).

Example:
    >>> import ir, numpy as np
    >>> from kernels.executor import run
    >>> model = ir.from_onnx_text('''
    ...     <ir_version: 10, opset_import: ["" : 21]>
    ...     g (float[N] x) => (float[N] y) { y = Relu(x) }
    ... ''')
    >>> run(model, {"x": np.array([-1.0, 2.0], np.float32)})["y"]
    array([0., 2.], dtype=float32)

With ``intermediates=True`` the result holds every value of the main graph by
name (inputs and every node output), which parity localisation uses to find the
first node that diverges.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import ir
from kernels.registry import KernelTable

#: Ops whose subgraphs the executor runs itself, rather than a kernel.
CONTROL_FLOW_OPS = ("If", "Loop", "Scan", "SequenceMap")
_ONNX_DOMAINS = ("", "ai.onnx")


class MissingKernelsError(NotImplementedError):
    """Some ops of a model have no kernel; ``missing`` lists ``(op, node name)`` for each node."""

    def __init__(self, runtime: str, device: str, opset: int, missing: list[tuple[str, str]]) -> None:
        self.runtime = runtime
        self.device = device
        self.opset = opset
        self.missing = missing
        ops = sorted({op for op, _ in missing})
        super().__init__(
            f"no {runtime} kernel on {device} at opset {opset} for {len(ops)} op(s): {', '.join(ops)} "
            f"({len(missing)} node(s))"
        )


class KernelError(RuntimeError):
    """A kernel (or a control-flow op) failed; the message names the node and the cause."""

    def __init__(self, node: ir.Node, cause: BaseException) -> None:
        self.node = node
        super().__init__(f"{node.op_type} node {ir.source_name(node)!r}: {type(cause).__name__}: {cause}")


def kernel_table(runtime: str) -> KernelTable:
    """The kernel table of ``runtime`` (``"torch"``); imports that runtime lazily."""
    if runtime == "torch":
        from kernels.torch import TORCH

        return TORCH
    raise ValueError(f"unknown kernel runtime {runtime!r} (known: 'torch')")


def model_opset(model: ir.Model) -> int:
    """The model's default-domain opset (the IR default if it imports only other domains)."""
    try:
        return ir.model_opset(model)
    except KeyError:
        return ir.DEFAULT_OPSET


def missing_kernels(model: ir.Model, table: KernelTable, device: str = "cpu") -> list[tuple[str, str]]:
    """``(op, node name)`` for every node, in every subgraph, that ``table`` cannot run."""
    missing = []
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        op, version = kernel_op(model, node)
        if op in CONTROL_FLOW_OPS:
            continue
        if table.find(op, version, device) is None:
            missing.append((op, node.name or ""))
    return missing


def kernel_op(model: ir.Model, node: ir.Node) -> tuple[str, int]:
    """The kernel-table key of ``node``'s op (``"ai.onnx.ml::Binarizer"`` outside the default
    domain) and the version of its domain that ``model`` imports."""
    if node.domain in _ONNX_DOMAINS:
        return node.op_type, model_opset(model)
    return ir.op_key(node.op_type, node.domain), ir.node_opset(model, node)


@functools.cache
def _variadic_start(op: str, opset: int) -> int | None:
    """Index of the op's variadic input (packed into one list argument), if any."""
    schema = ir.op_schema(op, opset)
    formal = schema.inputs if schema is not None else []
    if formal and formal[-1].option.name == "Variadic":
        return len(formal) - 1
    return None


@functools.cache
def _variadic_output(op: str, opset: int) -> bool:
    """True when the op's (last) output is variadic: a kernel's list is then several outputs."""
    schema = ir.op_schema(op, opset)
    formal = schema.outputs if schema is not None else []
    return bool(formal) and formal[-1].option.name == "Variadic"


@functools.cache
def _parameters(fn: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(fn).parameters)


def kernel_arguments(op: str, opset: int, inputs: list[Any]) -> list[Any]:
    """Positional kernel arguments: a variadic input's values become one list."""
    start = _variadic_start(op, opset)
    if start is None:
        return inputs
    return [*inputs[:start], list(inputs[start:])]


class Executor:
    """Runs one model on one runtime's kernels and one device.

    Args:
        model: the model; it is not modified.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``).
        runtime: the kernel table (``"torch"``).

    Raises:
        MissingKernelsError: some op has no kernel (all are listed at once).
        RuntimeError: CUDA was asked for and is not available.
    """

    def __init__(self, model: ir.Model, device: str = "cpu", runtime: str = "torch") -> None:
        import torch

        self._torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} was requested but CUDA is not available to torch")
        self.model = model
        self.device = torch.device(device)
        self.table = kernel_table(runtime)
        self.opset = model_opset(model)
        missing = missing_kernels(model, self.table, self.device.type)
        if missing:
            raise MissingKernelsError(runtime, self.device.type, self.opset, missing)
        self._constants: dict[ir.Value, Any] = {}

    # --- values ------------------------------------------------------------------

    def to_tensor(self, array: Any) -> Any:
        """An array-like (numpy, scalar, tensor, ir.Tensor) as a tensor on the device.

        A list (an ONNX sequence) becomes a list of tensors and ``None`` (an
        empty optional) stays ``None``.
        """
        if isinstance(array, list):
            return [self.to_tensor(a) for a in array]
        if array is None:
            return None
        return as_tensor(array, self.device)

    def _initializers(self, graph: ir.Graph, env: dict[ir.Value, Any]) -> None:
        for value in graph.initializers.values():
            if value not in self._constants:
                self._constants[value] = self.to_tensor(value.const_value)
            env[value] = self._constants[value]

    def _attribute(self, attr: ir.Attr) -> Any:
        if attr.type == ir.AttributeType.TENSOR:
            return self.to_tensor(attr.value)
        if attr.type == ir.AttributeType.TENSORS:
            return [self.to_tensor(t) for t in attr.value]
        if attr.type in (ir.AttributeType.INTS, ir.AttributeType.FLOATS, ir.AttributeType.STRINGS):
            return list(attr.value)
        return attr.value

    # --- graphs ------------------------------------------------------------------

    def run(self, inputs: Mapping[str, Any], *, intermediates: bool = False) -> dict[str, Any]:
        """Run the model; returns torch tensors by output name (every value's with ``intermediates``)."""
        graph = self.model.graph
        env: dict[ir.Value, Any] = {}
        self._initializers(graph, env)
        names = [v.name for v in graph.inputs]
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise KeyError(f"unknown input(s) {unknown}; the model's inputs are {names}")
        for value in graph.inputs:
            if value.name in inputs:
                env[value] = self.to_tensor(inputs[value.name])
            elif value not in env:  # an input with an initializer default may be omitted
                raise KeyError(f"missing input {value.name!r}; the model's inputs are {names}")
        with self._torch.no_grad():
            self._run_nodes(graph, env)
        if intermediates:
            return {v.name: t for v, t in env.items() if v.name and not v.is_initializer()}
        return {v.name: env[v] for v in graph.outputs}

    def _run_graph(self, graph: ir.Graph, outer: dict[ir.Value, Any], args: list[Any]) -> list[Any]:
        """Run a subgraph on ``args`` (its formal inputs) and return its outputs."""
        env = dict(outer)
        self._initializers(graph, env)
        for value, arg in zip(graph.inputs, args, strict=False):
            env[value] = arg
        self._run_nodes(graph, env)
        return [env[v] for v in graph.outputs]

    def _run_nodes(self, graph: ir.Graph, env: dict[ir.Value, Any]) -> None:
        for node in graph:
            args = [None if v is None else env[v] for v in node.inputs]
            try:
                if node.op_type in CONTROL_FLOW_OPS and node.domain in _ONNX_DOMAINS:
                    results = _CONTROL_FLOW[node.op_type](self, node, args, env)
                else:
                    results = self._call_kernel(node, args)
            except KernelError:
                raise
            except (RuntimeError, TypeError, ValueError, IndexError, AssertionError) as e:
                raise KernelError(node, e) from e
            for value, result in zip(node.outputs, results, strict=False):
                if value.name:
                    env[value] = result

    def _call_kernel(self, node: ir.Node, args: list[Any]) -> list[Any]:
        op, version = kernel_op(self.model, node)
        fn = self.table.lookup(op, version, self.device.type)
        kwargs = {name: self._attribute(a) for name, a in node.attributes.items()}
        if "num_outputs" in _parameters(fn) and "num_outputs" not in kwargs:
            kwargs["num_outputs"] = len(node.outputs)
        result = fn(*kernel_arguments(op, version, args), **kwargs)
        if node.op_type == "Constant":  # built on the CPU from scalar attributes
            result = result.to(self.device)
        if isinstance(result, tuple) or (isinstance(result, list) and _variadic_output(op, version)):
            return list(result)
        return [result]  # one tensor, or one sequence (a list) or empty optional (None)


# --- control flow ----------------------------------------------------------------


def _run_if(ex: Executor, node: ir.Node, args: list[Any], env: dict[ir.Value, Any]) -> list[Any]:
    branch = "then_branch" if bool(args[0].item()) else "else_branch"
    return ex._run_graph(node.attributes[branch].value, env, [])


def _stack(ex: Executor, items: list[Any], axis: int = 0) -> Any:
    torch = ex._torch
    if not items:
        return torch.zeros((0,), dtype=torch.float32, device=ex.device)
    return torch.stack(items, axis)


def _run_loop(ex: Executor, node: ir.Node, args: list[Any], env: dict[ir.Value, Any]) -> list[Any]:
    torch = ex._torch
    body: ir.Graph = node.attributes["body"].value
    trip = args[0] if len(args) > 0 else None
    cond = args[1] if len(args) > 1 else None
    carried = list(args[2:])
    n_scan = len(body.outputs) - 1 - len(carried)
    scans: list[list[Any]] = [[] for _ in range(n_scan)]
    max_trip = int(trip.item()) if trip is not None else None
    keep_going = bool(cond.item()) if cond is not None else True
    i = 0
    while keep_going and (max_trip is None or i < max_trip):
        iteration = torch.tensor(i, dtype=torch.int64, device=ex.device)
        cond_in = torch.tensor(keep_going, device=ex.device)
        outs = ex._run_graph(body, env, [iteration, cond_in, *carried])
        keep_going = bool(outs[0].item())
        carried = outs[1 : 1 + len(carried)]
        for k in range(n_scan):
            scans[k].append(outs[1 + len(carried) + k])
        i += 1
    return carried + [_stack(ex, s) for s in scans]


def _run_scan(ex: Executor, node: ir.Node, args: list[Any], env: dict[ir.Value, Any]) -> list[Any]:
    torch = ex._torch
    if ex.opset < 9:
        return _run_scan8(ex, node, args, env)
    body: ir.Graph = node.attributes["body"].value
    attrs = {k: ex._attribute(a) for k, a in node.attributes.items() if k != "body"}
    m = attrs["num_scan_inputs"]
    n_state = len(args) - m
    states, seqs = list(args[:n_state]), list(args[n_state:])
    in_axes = attrs.get("scan_input_axes") or [0] * m
    in_dirs = attrs.get("scan_input_directions") or [0] * m
    n_out = len(body.outputs) - n_state
    out_axes = attrs.get("scan_output_axes") or [0] * n_out
    out_dirs = attrs.get("scan_output_directions") or [0] * n_out
    seqs = [torch.movedim(s, a % s.dim(), 0) for s, a in zip(seqs, in_axes, strict=True)]
    seqs = [torch.flip(s, [0]) if d else s for s, d in zip(seqs, in_dirs, strict=True)]
    steps = seqs[0].shape[0] if seqs else 0
    collected: list[list[Any]] = [[] for _ in range(n_out)]
    for t in range(steps):
        outs = ex._run_graph(body, env, states + [s[t] for s in seqs])
        states = outs[:n_state]
        for k in range(n_out):
            collected[k].append(outs[n_state + k])
    results = []
    for k in range(n_out):
        items = collected[k][::-1] if out_dirs[k] else collected[k]
        stacked = _stack(ex, items)
        results.append(torch.movedim(stacked, 0, out_axes[k] % stacked.dim()))
    return states + results


def _run_sequence_map(ex: Executor, node: ir.Node, args: list[Any], env: dict[ir.Value, Any]) -> list[Any]:
    """The body once per item of the first input; further inputs give their item when
    they are sequences, themselves when tensors. Each body output collects into a sequence."""
    body: ir.Graph = node.attributes["body"].value
    seq, extra = args[0], args[1:]
    outputs: list[list[Any]] = [[] for _ in body.outputs]
    for t in range(len(seq)):
        items = [a[t] if isinstance(a, list) else a for a in extra]
        for collected, result in zip(outputs, ex._run_graph(body, env, [seq[t], *items]), strict=True):
            collected.append(result)
    return outputs


def _run_scan8(ex: Executor, node: ir.Node, args: list[Any], env: dict[ir.Value, Any]) -> list[Any]:
    """Scan-8: every state and scan input has a leading batch axis (scan inputs scan their axis 1),
    an optional first input gives each batch entry's length; the body runs per entry and step."""
    torch = ex._torch
    body: ir.Graph = node.attributes["body"].value
    attrs = {k: ex._attribute(a) for k, a in node.attributes.items() if k != "body"}
    m = attrs["num_scan_inputs"]
    lengths, rest = args[0], list(args[1:])
    n_state = len(rest) - m
    states, seqs = rest[:n_state], rest[n_state:]
    reverse = attrs.get("directions") or [0] * m
    n_out = len(body.outputs) - n_state
    finals: list[list[Any]] = [[] for _ in range(n_state)]
    scans: list[list[Any]] = [[] for _ in range(n_out)]
    for b in range((states + seqs)[0].shape[0]):
        steps = int(lengths[b].item()) if lengths is not None else (seqs[0].shape[1] if seqs else 0)
        carried = [s[b] for s in states]
        items = [torch.flip(x[b, :steps], [0]) if r else x[b, :steps] for x, r in zip(seqs, reverse, strict=True)]
        collected: list[list[Any]] = [[] for _ in range(n_out)]
        for t in range(steps):
            outs = ex._run_graph(body, env, carried + [x[t] for x in items])
            carried = outs[:n_state]
            for k in range(n_out):
                collected[k].append(outs[n_state + k])
        for k in range(n_state):
            finals[k].append(carried[k])
        for k in range(n_out):
            scans[k].append(_stack(ex, collected[k]))
    return [torch.stack(f) for f in finals] + [torch.stack(s) for s in scans]


_CONTROL_FLOW: dict[str, Callable[[Executor, ir.Node, list[Any], dict[ir.Value, Any]], list[Any]]] = {
    "If": _run_if,
    "Loop": _run_loop,
    "Scan": _run_scan,
    "SequenceMap": _run_sequence_map,
}


def as_tensor(array: Any, device: Any = "cpu") -> Any:
    """An array-like (numpy, scalar, tensor, ir.Tensor) as a torch tensor on ``device``.

    Raises:
        TypeError: string tensors, and dtypes torch lacks (float8 from numpy, int4).
    """
    import torch

    if isinstance(array, torch.Tensor):
        return array.to(device)
    if isinstance(array, ir.TensorProtocol):
        array = array.numpy()
    arr = np.asarray(array)
    if arr.dtype.name == "bfloat16":  # ml_dtypes: no numpy interop in torch
        return torch.from_numpy(arr.astype(np.float32)).to(device, torch.bfloat16)
    if arr.dtype.kind in "OSUV" or arr.dtype.name.startswith("float8") or "int4" in arr.dtype.name:
        raise TypeError(f"dtype {arr.dtype} (strings, float8, int4) is not supported by the torch kernels")
    return torch.from_numpy(np.array(arr, order="C", copy=True)).to(device)  # keeps 0-d arrays 0-d


def to_numpy(tensor: Any) -> Any:
    """A torch tensor as a numpy array on the host (bfloat16 widens to float32).

    A sequence (list of tensors) becomes a list of arrays; ``None`` stays ``None``.
    """
    import torch

    if isinstance(tensor, list):
        return [to_numpy(t) for t in tensor]
    if tensor is None:
        return None
    t = tensor.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    return t.numpy()


def run(
    model: ir.Model,
    inputs: Mapping[str, Any],
    *,
    runtime: str = "torch",
    device: str = "cpu",
    intermediates: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``model`` on ``inputs`` with the kernels of ``runtime`` on ``device``.

    Args:
        model: the IR model (opset taken from its default-domain import).
        inputs: arrays by graph input name.
        runtime: the kernel table to use (``"torch"``).
        device: ``"cpu"`` or ``"cuda"``.
        intermediates: return every value of the main graph, not only the outputs.

    Returns:
        numpy arrays by value name, graph outputs in graph order.

    Raises:
        MissingKernelsError: ops without a kernel, all listed.
        RuntimeError: CUDA requested and unavailable, or a kernel failed (the
            message names the node).
    """
    results = Executor(model, device, runtime).run(inputs, intermediates=intermediates)
    return {name: to_numpy(t) for name, t in results.items()}
