"""Native runners for parity: each format runs in its own framework.

A runner exposes ``signature()`` (``[(name, shape, dtype)]`` with symbols as
strings, or ``None`` when the format does not record one) and
``run(feeds) -> {output name: np.ndarray}``. Frameworks are imported lazily.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from converter import formats
from converter.errors import InputError, NotYetSupportedError

Signature = list[tuple[str, list[int | str | None], str]]

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16", "tensor(int8)": "int8", "tensor(int16)": "int16",
    "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool", "tensor(string)": "str",
}


class Runner:
    """Runs one model in its native runtime."""

    note = ""
    #: Whether ``run`` matches feeds to inputs by name (else by position).
    named_inputs = True

    def signature(self) -> Signature | None:
        return None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def open_runner(obj: Any, fmt: str | None, *, device: str = "cpu", signature: str = "serving_default",
                unsafe_load: bool = False, examples: Any = None) -> Runner:
    """The runner for ``obj`` (a path or live object) in format ``fmt`` (detected if None).

    ``examples``: the example inputs a PyTorch source was converted with; when they are
    structured (a dict or tuple argument, keyword arguments) the module is called with the
    same structure, rebuilt from the flat feeds.
    """
    fmt = formats.detect_source(obj, fmt)
    if fmt == "onnx":
        return OnnxRunner(obj, device)
    if fmt == "torchscript":
        return TorchScriptRunner(obj, device)
    if fmt in ("torch", "exported_program"):
        return TorchRunner(obj, device, unsafe_load=unsafe_load, examples=examples)
    if fmt == "savedmodel":
        return SavedModelRunner(obj, device, signature)
    if fmt in ("keras", "tf"):
        return TensorFlowRunner(obj, device, safe_mode=not unsafe_load)
    if fmt == "graphdef":
        return GraphDefRunner(obj, device)
    if fmt == "tflite":
        return TFLiteRunner(obj, device)
    raise NotYetSupportedError(f"running {fmt} models for parity is not supported yet", "validate against an ONNX or TorchScript file")


class OnnxRunner(Runner):
    """onnxruntime, with the CUDA provider on ``cuda`` where it is installed."""

    def __init__(self, obj: Any, device: str) -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                self.note = "onnxruntime has no CUDA provider here: the ONNX side ran on CPU"
        if isinstance(obj, (str, os.PathLike)):
            model: Any = str(obj)
        else:
            import onnx

            import ir

            proto = ir.to_proto(obj) if isinstance(obj, ir.Model) else obj
            model = proto.SerializeToString() if isinstance(proto, onnx.ModelProto) else proto
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Prepacking copies every constant MatMul/Gemm/Conv weight into a packed buffer: a
        # second copy of the weights for a speed-up that a parity run (a batch or two) does not
        # recoup. Without it, external data loaded from a path stays memory-mapped.
        options.add_session_config_entry("session.disable_prepacking", "1")
        try:
            self.session = ort.InferenceSession(model, options, providers=providers)
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            what = obj if isinstance(obj, (str, os.PathLike)) else "the model"
            if "NOT_IMPLEMENTED" in msg:  # a valid model onnxruntime has no kernel for (bfloat16 Gemm on CPU)
                raise NotYetSupportedError(f"onnxruntime cannot run {what}: {msg}",
                                           "check it with another runtime (crossgraph validate)") from None
            raise InputError(f"onnxruntime cannot load {what}: {msg}") from None

    def signature(self) -> Signature:
        sig = []
        for i in self.session.get_inputs():
            shape = [d if isinstance(d, int) else (d or None) for d in (i.shape or [])]
            sig.append((i.name, shape, _ORT_TYPES.get(i.type, "float32")))
        return sig

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [i.name for i in self.session.get_inputs()]
        ordered = _match_feeds(names, feeds)
        outs = self.session.run(None, ordered)
        return {o.name: np.asarray(v) for o, v in zip(self.session.get_outputs(), outs, strict=True)}


class TorchScriptRunner(Runner):
    """``torch.jit.load``; inputs by name for crossgraph's modules, else by position."""

    named_inputs = False

    def __init__(self, path: Any, device: str) -> None:
        import torch

        self.device = device
        try:
            self.module = torch.jit.load(str(path), map_location=device)
        except Exception as e:
            raise InputError(f"{path}: torch.jit.load failed: {str(e).strip().splitlines()[0]}") from None
        self.module.eval()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        names = list(getattr(self.module, "input_names", None) or [])
        if names and set(names) == set(feeds):  # a crossgraph module records its inputs: feed by name
            feeds = {n: feeds[n] for n in names}
        with torch.no_grad():
            out = self.module(*[torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for v in feeds.values()])
        outputs = _torch_outputs(out)
        out_names = list(getattr(self.module, "output_names", None) or [])
        if len(out_names) == len(outputs):
            return dict(zip(out_names, outputs.values(), strict=True))
        return outputs


class TorchRunner(Runner):
    """A live nn.Module / ExportedProgram / ScriptModule, or a ``.pt2`` file (inputs by position)."""

    named_inputs = False

    def __init__(self, obj: Any, device: str, *, unsafe_load: bool = False, examples: Any = None) -> None:
        import torch

        self.device = device
        if isinstance(obj, str) and not pathlib.Path(obj).exists() and ":" in obj:
            from converter.frontends.torch.export import call_factory

            obj = call_factory(obj)
        elif isinstance(obj, (str, os.PathLike)):
            if not pathlib.Path(obj).is_file():
                raise InputError(f"{obj}: no such file")
            from converter.frontends.torch.export import load_pt2

            obj = load_pt2(obj, unsafe_load=unsafe_load)  # torch.export.load unpickles with weights_only=False
        if isinstance(obj, torch.export.ExportedProgram):
            obj = obj.module()
        self.module = obj.to(device) if hasattr(obj, "to") else obj
        self.structure = _call_structure(examples)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        flat = [torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for v in feeds.values()]
        args, kwargs = (flat, {}) if self.structure is None else torch.utils._pytree.tree_unflatten(flat, self.structure)
        with torch.no_grad(), _eval_mode(self.module):
            out = self.module(*args, **kwargs)
        return _torch_outputs(out)


def _call_structure(examples: Any) -> Any:
    """The pytree spec of ``(args, kwargs)`` when the example inputs are structured, else None."""
    import torch

    from converter.inputs import InputSpec

    if examples is None or isinstance(examples, (str, InputSpec, torch.Tensor, np.ndarray)):
        return None
    items = list(examples.values()) if isinstance(examples, Mapping) else list(examples)
    if any(isinstance(i, (str, InputSpec)) for i in items):
        return None
    if not isinstance(examples, Mapping) and all(isinstance(i, (torch.Tensor, np.ndarray)) for i in items):
        return None  # plain positional tensors: called as they come
    from converter.frontends.torch.export import make_examples

    made = make_examples(examples)
    return torch.utils._pytree.tree_flatten((made.args, made.kwargs))[1]


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """``module`` in eval mode for one call, then back in the mode the caller left it in."""
    training = getattr(module, "training", None)
    try:
        module.eval()
    except (AttributeError, NotImplementedError, RuntimeError):
        training = None  # exported GraphModules refuse .eval(); they run in the mode they were exported in
    try:
        yield
    finally:
        if training:
            module.train(training)


class SavedModelRunner(Runner):
    """``tf.saved_model.load`` and one of its signatures (``serving_default``)."""

    def __init__(self, path: Any, device: str, signature: str) -> None:
        tf = _import_tf()
        if device == "cuda":
            self.note = "TensorFlow runs on CPU here"
        try:
            self.loaded = tf.saved_model.load(str(path))
        except Exception as e:
            raise InputError(f"{path}: tf.saved_model.load failed: {_first_line(e)}") from None
        if signature not in self.loaded.signatures:
            available = ", ".join(self.loaded.signatures) or "none"
            raise InputError(f"{path}: no signature {signature!r}", f"available: {available}")
        self.fn = self.loaded.signatures[signature]
        # crossgraph's own SavedModels record the model's names for the signature's sanitized ones.
        self.inputs_by_name, self.outputs_by_signature = _recorded_names(path)

    def signature(self) -> Signature:
        _, kwargs = self.fn.structured_input_signature
        # The loaded signature's order varies between processes; the TF front end sorts by name too.
        return [(name, _tf_dims(spec.shape), spec.dtype.name) for name, spec in sorted(kwargs.items())]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = _import_tf()
        names = [name for name, _, _ in self.signature()]
        by_model_names = set(feeds) != set(names) and set(feeds) == set(self.inputs_by_name)
        if by_model_names:  # fed with the model's own names ('class', 'input.1'): the recorded mapping
            ordered = {self.inputs_by_name[k]: v for k, v in feeds.items()}
        else:
            ordered = _match_feeds(names, feeds)
        out = self.fn(**{k: tf.constant(v) for k, v in ordered.items()})
        if by_model_names:
            return {self.outputs_by_signature.get(k, k): v.numpy() for k, v in out.items()}
        return {k: v.numpy() for k, v in out.items()}


def _recorded_names(path: Any) -> tuple[dict[str, str], dict[str, str]]:
    """``({model input name: signature name}, {signature output name: model name})`` from the
    ``assets.extra/crossgraph.json`` the SavedModel back end writes; empty without one."""
    import json

    manifest = pathlib.Path(path) / "assets.extra" / "crossgraph.json"
    try:
        record = json.loads(manifest.read_text())
        inputs = {e["name"]: e["signature_name"] for e in record.get("inputs", [])}
        outputs = {e["signature_name"]: e["name"] for e in record.get("outputs", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, {}
    return inputs, outputs


class TensorFlowRunner(Runner):
    """A Keras file or model, or a live ``tf.function`` / ``tf.Module`` with an input signature."""

    def __init__(self, obj: Any, device: str, safe_mode: bool = True) -> None:
        _import_tf()
        if device == "cuda":
            self.note = "TensorFlow runs on CPU here"
        if isinstance(obj, (str, os.PathLike)):
            from converter.frontends.tensorflow.keras import read_model

            obj = read_model(obj, safe_mode=safe_mode)  # as the front end reads it (Keras 2 .h5 too)
        self.obj = obj

    def signature(self) -> Signature | None:
        inputs = getattr(self.obj, "inputs", None)
        if inputs:
            return [(getattr(t, "name", f"input_{i}").split(":")[0], _tf_dims(t.shape), _dtype_name(t.dtype))
                    for i, t in enumerate(inputs)]
        specs = getattr(self.obj, "input_signature", None)
        if specs and all(s.shape.rank is not None for s in specs):  # else the IR's shapes (from --input)
            return [(s.name or f"input_{i}", _tf_dims(s.shape), s.dtype.name) for i, s in enumerate(specs)]
        return None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = _import_tf()
        args = [tf.constant(v) for v in feeds.values()]
        if hasattr(self.obj, "layers"):  # a Keras model: one tensor, or a list for several inputs
            out = self.obj(args if len(args) > 1 else args[0], training=False)
            if isinstance(out, (list, tuple)):
                from converter.frontends.tensorflow.keras import _output_names

                names = _output_names(self.obj)
                if names and len(names) == len(out):  # the names the front end gives the outputs
                    return {n: np.asarray(v) for n, v in zip(names, out, strict=True)}
        else:
            out = self.obj(*args)
        return _tf_outputs(out)


class GraphDefRunner(Runner):
    """A frozen GraphDef: Placeholders are the inputs, nodes nobody reads are the outputs."""

    def __init__(self, path: Any, device: str) -> None:
        tf = _import_tf()
        from converter.frontends.tensorflow import graphdef

        if device == "cuda":
            self.note = "TensorFlow runs on CPU here"
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(pathlib.Path(path).read_bytes())
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable GraphDef ({_first_line(e)})") from None
        nodes = {n.name: n for n in graph_def.node}
        self.inputs = [graphdef._placeholder(n) for n in nodes.values() if n.op == "Placeholder"]
        self.outputs = graphdef._unconsumed(graph_def)

        def imported():
            tf.compat.v1.import_graph_def(graph_def, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(imported, [])
            g = wrapped.graph
            self.fn = wrapped.prune([g.as_graph_element(f"{i.name}:0") for i in self.inputs],
                                    [g.as_graph_element(t) for t in self.outputs])
        except (ValueError, TypeError, KeyError, tf.errors.OpError) as e:
            raise InputError(f"{path}: TensorFlow cannot import the graph ({_first_line(e)})") from None

    def signature(self) -> Signature:
        return [(i.name, list(i.shape) if i.shape is not None else [], i.dtype.name if i.dtype else "float32")
                for i in self.inputs]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = _import_tf()
        ordered = _match_feeds([i.name for i in self.inputs], feeds)
        out = self.fn(*[tf.constant(v) for v in ordered.values()])
        names = [t[:-2] if t.endswith(":0") else t for t in self.outputs]
        return {n: np.asarray(v) for n, v in zip(names, out, strict=True)}


class TFLiteRunner(Runner):
    """LiteRT (``ai-edge-litert``) through the model's ``serving_default`` signature runner."""

    def __init__(self, path: Any, device: str) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise InputError("running .tflite models needs LiteRT", "pip install ai-edge-litert") from None
        if device == "cuda":
            self.note = "LiteRT runs on CPU"
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=1)
            signatures = self.interpreter.get_signature_list()
        except Exception as e:
            raise InputError(f"{path}: LiteRT cannot load it ({_first_line(e)})") from None
        if not signatures:
            raise InputError(f"{path}: the .tflite model has no signature", "convert it with crossgraph or tf.lite")
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        self.names = signatures[key]["inputs"]
        self.runner = self.interpreter.get_signature_runner(key)
        from converter.backends.tflite import read_metadata

        self.layouts = read_metadata(path).get("io_layouts", {})  # --nhwc-io files record their permutations

    def signature(self) -> Signature:
        details = self.runner.get_input_details()
        sig: Signature = []
        for name in self.names:
            d = details[name]
            dims = [int(x) if x >= 0 else None for x in d.get("shape_signature", d["shape"])]
            perm = self.layouts.get("inputs", {}).get(name)
            if perm:  # the file is NHWC: report the source's layout
                dims = [dims[perm.index(i)] for i in range(len(perm))]
            sig.append((name, dims, np.dtype(d["dtype"]).name))
        return sig

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ordered = _match_feeds(self.names, feeds)
        ins = self.layouts.get("inputs", {})
        ordered = {k: np.transpose(v, ins[k]) if k in ins else v for k, v in ordered.items()}
        out = self.runner(**{k: np.ascontiguousarray(v) for k, v in ordered.items()})
        outs = self.layouts.get("outputs", {})
        return {k: np.transpose(v, np.argsort(outs[k])) if k in outs else np.asarray(v) for k, v in out.items()}


def _import_tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise InputError("running a TensorFlow model needs TensorFlow", "pip install 'crossgraph[tf]'") from None
    return tf


def _tf_dims(shape: Any) -> list[int | str | None]:
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return [d if isinstance(d, int) else None for d in dims]


def _dtype_name(dtype: Any) -> str:
    return getattr(dtype, "name", None) or str(dtype)


def _tf_outputs(out: Any) -> dict[str, np.ndarray]:
    """Outputs named as the TensorFlow front end names them (nested dict values included)."""
    from converter.frontends.tensorflow.convert import as_output_dict

    return {k: np.asarray(v) for k, v in as_output_dict(out).items()}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _torch_outputs(out: Any) -> dict[str, np.ndarray]:
    import torch

    if isinstance(out, torch.Tensor):
        return {"output": out.detach().cpu().numpy()}
    if isinstance(out, dict):
        return {str(k): v.detach().cpu().numpy() for k, v in out.items()}
    flat: list[Any] = []

    def walk(x: Any) -> None:
        if isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)
        else:
            flat.append(x)

    walk(out)
    return {f"output_{i}": (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)) for i, t in enumerate(flat)}


def _match_feeds(names: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if set(names) == set(feeds):
        return {n: feeds[n] for n in names}
    if len(names) == len(feeds):
        return dict(zip(names, feeds.values(), strict=True))
    raise InputError(f"the model takes inputs {names}, but {list(feeds)} were given")
