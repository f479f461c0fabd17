"""Robustness sweep over ONNX files "from the wild": what other tools write, converted by crossgraph.

Every ONNX file is built in-process with random weights (nothing is downloaded):

- ``torch.onnx.export`` with ``dynamo=True`` (opset 18, dynamic shapes) of small
  transformers models (BERT, GPT-2 with past key values, ViT, Whisper's encoder), of a
  ``torch.stft`` spectrogram and of hand-written modules, and with ``dynamo=False`` (the TorchScript exporter) at opsets 11,
  13 and 17;
- onnxscript models calling onnxscript functions (ONNX local functions with attributes);
- legacy opsets written with ``onnx.helper`` (opset 7 and 10) and models moved between
  opsets with ``onnx.version_converter``;
- float16 models (everything in half precision, and a mixed one keeping float32 at the
  boundaries and around one op, as onnxconverter_common's ``keep_io_types`` does);
- external data in a sub-folder; local functions written with ``onnx.helper.make_function``;
  nested If/Loop subgraphs capturing outer values; a Scan; missing or wrong ``value_info``;
  initializers listed as graph inputs (IR version 3); unused inputs and pass-through or
  constant outputs; clashing and empty node names; nodes out of order; the default domain
  spelled ``ai.onnx``; a sparse initializer;
- tf2onnx's ``from_function`` on ``keras.applications.ResNet50(weights=None)`` and
  skl2onnx on a scikit-learn pipeline (``zipmap=False``).

Each file is converted with ``converter.convert(path, dst, check=True)`` (at the default
``-O2``) to ``onnx`` (re-optimized ONNX), ``pt`` (TorchScript), ``sm`` (SavedModel) and,
for vision models, ``tflite``; parity is checked against the ONNX file in onnxruntime. The
table has one row per model and target: ok/weak/FAIL, seconds, the worst max-abs error, the
worst error relative to its output's scale, and the error's first line (see
``bench/sweep_models.py`` for "weak"). Exit status 1 when any row failed.

Run from the repository root:
``nice .venv/bin/python bench/sweep_onnx.py [--only wild_if_loop,dynamo_bert] [--targets onnx,pt,sm,tflite]``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxscript
from onnx import TensorProto, helper, numpy_helper
from onnxscript import FLOAT
from onnxscript import opset18 as op18

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep_models import Row, _errors, _first_line, run_sweep  # noqa: E402

import converter  # noqa: E402

VOCAB = 100
F = TensorProto.FLOAT


@dataclasses.dataclass
class Case:
    """One ONNX file of the sweep: how to write it into a folder (returns its path), whether it is vision."""

    name: str
    build: Callable[[Path], Path]
    vision: bool = False
    inputs: list[str] | None = None


# --------------------------------------------------------------------------- torch exports


def _export(factory: Callable[[], Any], example: Callable[[], tuple], axes: dict[str, dict[int, str]], *,
            dynamo: bool, opset: int | None = None, outputs: list[str] | None = None,
            **options: Any) -> Callable[[Path], Path]:
    """A builder exporting ``factory()`` with ``torch.onnx.export`` (dynamo or TorchScript-based)."""

    def build(folder: Path) -> Path:
        import torch

        torch.manual_seed(0)
        model = factory().eval()
        path = folder / "model.onnx"
        args = example()
        names = list(axes)
        if dynamo:
            shapes = {n: {a: torch.export.Dim.AUTO for a in dims} for n, dims in axes.items()}
            torch.onnx.export(model, args, str(path), dynamo=True, input_names=names, output_names=outputs,
                              dynamic_shapes=shapes, opset_version=opset or 18, **options)
        else:
            dyn = dict(axes) | {o: {0: "batch"} for o in outputs or []}
            torch.onnx.export(model, args, str(path), dynamo=False, opset_version=opset, input_names=names,
                              output_names=outputs, dynamic_axes=dyn, **options)
        return path

    return build


def _text_ids(seq: int = 7) -> Callable[[], tuple]:
    def example() -> tuple:
        import torch

        return (torch.randint(0, VOCAB, (2, seq)), torch.ones(2, seq, dtype=torch.int64))

    return example


def _image(channels: int = 3, size: int = 32) -> Callable[[], tuple]:
    def example() -> tuple:
        import torch

        return (torch.randn(2, channels, size, size),)

    return example


TEXT_AXES = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
IMAGE_AXES = {"pixel_values": {0: "batch"}}


def _bert() -> Any:
    from fixtures.zoo import bert

    return bert()


def _bert_hidden() -> Any:
    """BERT called with keywords, returning the last hidden state (for the TorchScript-based exporter)."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = _bert()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return Hidden()


def _vit() -> Any:
    from fixtures.zoo import vit

    return vit()


def _whisper_encoder() -> Any:
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(vocab_size=VOCAB, d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=16,
                           max_source_positions=16, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2, decoder_start_token_id=1)
    return WhisperModel(config).get_encoder()


def _mel() -> tuple:
    import torch

    return (torch.randn(2, 16, 32),)


def _gpt2_past() -> Any:
    """GPT-2 taking and returning its key/value cache as plain tensors (two layers)."""
    import torch
    from transformers import DynamicCache, GPT2Config, GPT2Model

    class WithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=2, n_positions=64)
            self.gpt = GPT2Model(self.config)

        def forward(self, input_ids, k0, v0, k1, v1):  # noqa: ANN001, ANN201
            cache = DynamicCache(config=self.config)
            cache.update(k0, v0, 0)
            cache.update(k1, v1, 1)
            out = self.gpt(input_ids=input_ids, past_key_values=cache, use_cache=True)
            layers = out.past_key_values.layers
            return out.last_hidden_state, layers[0].keys, layers[0].values, layers[1].keys, layers[1].values

    return WithPast()


def _gpt2_past_example() -> tuple:
    import torch

    past = [torch.randn(2, 2, 5, 32) for _ in range(4)]
    return (torch.randint(0, VOCAB, (2, 3)), *past)


GPT2_AXES = {"input_ids": {0: "batch", 1: "seq"}} | {n: {0: "batch", 2: "past"} for n in ("k0", "v0", "k1", "v1")}


def _vision_module() -> Any:
    """Conv, BatchNorm, MaxPool, bilinear upsampling, channel attention and a linear head."""
    import torch
    from torch import nn

    class Vision(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.gate = nn.Linear(8, 8)
            self.head = nn.Linear(8, 5)
            with torch.no_grad():
                self.bn.running_mean.uniform_(-0.5, 0.5)
                self.bn.running_var.uniform_(0.5, 1.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            y = nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            weights = torch.sigmoid(self.gate(y.mean(dim=(2, 3))))
            y = y * weights[:, :, None, None]
            return torch.softmax(self.head(y.amax(dim=(2, 3))), dim=-1)

    return Vision()


def _sequence_module() -> Any:
    """LSTM, LayerNorm, self-attention by hand, cumsum, slicing and top-k."""
    import torch
    from torch import nn

    class Sequence(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 8, batch_first=True)
            self.norm = nn.LayerNorm(8)
            self.qkv = nn.Linear(8, 24)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h, _ = self.lstm(x)
            h = self.norm(h + x)
            q, k, v = self.qkv(h).chunk(3, dim=-1)
            attn = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1) @ v
            out = torch.cumsum(attn, dim=1)[:, 1:, :]
            values, _ = torch.topk(out, 2, dim=-1)
            return out, values

    return Sequence()


def _spectrogram() -> Any:
    """torch.stft with a Hann window, magnitude, log and a linear layer over the bins."""
    import torch
    from torch import nn

    class Spectrogram(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(9, 4)

        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            spec = torch.stft(audio, n_fft=16, hop_length=4, window=torch.hann_window(16), center=False,
                              return_complex=True)
            return self.head(torch.log1p(spec.abs()).transpose(1, 2))

    return Spectrogram()


def _audio() -> tuple:
    import torch

    return (torch.randn(2, 64),)


def _seq_example() -> tuple:
    import torch

    return (torch.randn(2, 6, 8),)


SEQ_AXES = {"x": {0: "batch", 1: "seq"}}
VISION_AXES = {"x": {0: "batch"}}


# onnxscript reads a function's source and resolves the names it uses among the module's
# globals, so the model of the ``onnxscript_functions`` case is defined at module level.
_LOCAL = onnxscript.values.Opset("com.example.local", 1)


@onnxscript.script(_LOCAL, default_opset=op18)
def scaled_gelu(x, alpha: float):
    """x * sigmoid(1.702 x) * alpha, with ``alpha`` a function attribute."""
    return op18.Mul(op18.Mul(x, op18.Sigmoid(op18.Mul(x, op18.Constant(value_float=1.702)))), op18.CastLike(alpha, x))


@onnxscript.script(_LOCAL, default_opset=op18)
def dense_gelu(x, w):
    """MatMul then the scaled GELU."""
    return scaled_gelu(op18.MatMul(x, w), alpha=0.5)


@onnxscript.script(default_opset=op18)
def two_blocks(x: FLOAT["batch", 8], w: FLOAT[8, 8]) -> FLOAT["batch", 8]:  # noqa: F821, UP037
    """Two blocks sharing one weight input."""
    return dense_gelu(dense_gelu(x, w), w)


def _onnxscript_functions(folder: Path) -> Path:
    """An onnxscript model calling onnxscript functions of a custom domain (one with an attribute)."""
    path = folder / "model.onnx"
    onnx.save(two_blocks.to_model_proto(), path)
    return path


# --------------------------------------------------------------------------- onnx.helper models


def _save(graph: onnx.GraphProto, folder: Path, opset: int, *, ir_version: int | None = None,
          functions: list | None = None, domains: dict[str, int] | None = None) -> Path:
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    model = helper.make_model(graph, opset_imports=imports, functions=functions or [], producer_name="sweep")
    model.ir_version = ir_version or min(helper.VERSION_TABLE[-1][1], 8)
    path = folder / "model.onnx"
    onnx.save(model, path)
    return path


def _weight(name: str, *shape: int, seed: int = 0) -> TensorProto:
    rng = np.random.default_rng(seed + sum(shape))
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _opset7(folder: Path) -> Path:
    """Opset 7: BatchNormalization(spatial), Upsample with a scales attribute, Pad and Slice with attributes."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], spatial=1, epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("Upsample", ["r"], ["u"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0]),
        helper.make_node("Pad", ["u"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect"),
        helper.make_node("Slice", ["p"], ["sl"], axes=[2, 3], starts=[1, 0], ends=[-1, 1000]),
        helper.make_node("Sum", ["sl", "sl", "sl"], ["su"]),
        helper.make_node("GlobalAveragePool", ["su"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
        helper.make_node("Dropout", ["y"], ["out"], ratio=0.3),
    ]
    inits = [_weight("w", 4, 3, 3, 3), _weight("b", 4), _weight("bb", 4), _weight("m", 4), _weight("gw", 5, 4),
             _weight("gb", 5), numpy_helper.from_array(np.linspace(0.5, 1.5, 4, dtype=np.float32), "s"),
             numpy_helper.from_array(np.linspace(0.5, 1.5, 4, dtype=np.float32), "v")]
    graph = helper.make_graph(nodes, "opset7", [helper.make_tensor_value_info("x", F, ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("out", F, ["batch", 5])], inits)
    graph.input.extend(helper.make_tensor_value_info(t.name, F, list(t.dims)) for t in graph.initializer)
    return _save(graph, folder, 7, ir_version=3)


def _opset10(folder: Path) -> Path:
    """Opset 10: Resize-10, Slice with inputs, TopK with a k input, MaxPool ceil_mode, Upsample-9 style scales."""
    i64 = lambda name, *v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("Resize", ["mp", "scales"], ["rs"], mode="linear"),
        helper.make_node("Slice", ["rs", "starts", "ends", "axes", "steps"], ["sl"]),
        helper.make_node("ReduceMean", ["sl"], ["rm"], axes=[1], keepdims=0),
        helper.make_node("Flatten", ["rm"], ["fl"], axis=1),
        helper.make_node("TopK", ["fl", "k"], ["vals", "idx"], axis=-1),
        helper.make_node("Where", ["cond", "vals", "zeros"], ["wh"]),
        helper.make_node("Greater", ["vals", "zeros"], ["cond"]),
    ]
    nodes = nodes[:-2] + [nodes[-1], nodes[-2]]
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales"),
             i64("starts", 0, 1), i64("ends", 100, -1), i64("axes", 2, 3), i64("steps", 2, 1), i64("k", 4),
             numpy_helper.from_array(np.zeros(4, np.float32), "zeros")]
    graph = helper.make_graph(nodes, "opset10", [helper.make_tensor_value_info("x", F, ["batch", 3, 9, 9])],
                              [helper.make_tensor_value_info("wh", F, ["batch", 4]),
                               helper.make_tensor_value_info("idx", TensorProto.INT64, ["batch", 4])], inits)
    return _save(graph, folder, 10, ir_version=5)


def _version_converted(build: Callable[[Path], Path], opset: int) -> Callable[[Path], Path]:
    """``build``'s model moved to ``opset`` with ``onnx.version_converter``."""

    def convert(folder: Path) -> Path:
        from onnx import version_converter

        path = build(folder)
        model = version_converter.convert_version(onnx.load(path), opset)
        # The converter adds initializers without listing them as inputs: not valid below IR version 4.
        model.ir_version = max(model.ir_version, 4)
        onnx.save(model, path)
        return path

    return convert


def _ref(name: str, parent: str) -> onnx.AttributeProto:
    """A float attribute ``name`` that takes the value of the calling node's attribute ``parent``."""
    return onnx.AttributeProto(name=name, type=onnx.AttributeProto.FLOAT, ref_attr_name=parent)


def _with(node: onnx.NodeProto, attr: onnx.AttributeProto) -> onnx.NodeProto:
    node.attribute.append(attr)
    return node


def _make_functions(folder: Path) -> Path:
    """Local functions: one with an attribute reference and a default, called from another, used twice."""
    act = helper.make_function(
        "local.fn", "ScaledTanh", ["x"], ["y"],
        [_with(helper.make_node("Constant", [], ["a"]), _ref("value_float", "alpha")),
         helper.make_node("CastLike", ["a", "x"], ["alpha"]),
         helper.make_node("Tanh", ["x"], ["t"]),
         _with(helper.make_node("LeakyRelu", ["t"], ["l"]), _ref("alpha", "alpha")),
         helper.make_node("Mul", ["l", "alpha"], ["y"])],
        [helper.make_opsetid("", 18)], attributes=["alpha"],
    )
    dense = helper.make_function(
        "local.fn", "Dense", ["x", "w"], ["y"],
        [helper.make_node("MatMul", ["x", "w"], ["h"]),
         helper.make_node("ScaledTanh", ["h"], ["y"], domain="local.fn", alpha=0.2)],
        [helper.make_opsetid("", 18), helper.make_opsetid("local.fn", 1)],
    )
    nodes = [helper.make_node("Dense", ["x", "w"], ["h1"], domain="local.fn", name="d1"),
             helper.make_node("Dense", ["h1", "w"], ["h2"], domain="local.fn", name="d2"),
             helper.make_node("ScaledTanh", ["h2"], ["y"], domain="local.fn", alpha=0.05)]
    graph = helper.make_graph(nodes, "functions", [helper.make_tensor_value_info("x", F, ["batch", 6])],
                              [helper.make_tensor_value_info("y", F, ["batch", 6])], [_weight("w", 6, 6)])
    return _save(graph, folder, 18, functions=[act, dense], domains={"local.fn": 1})


def _if_loop(folder: Path) -> Path:
    """An If whose branches capture outer values; the else branch holds a Loop holding an If."""
    inner_then = helper.make_graph([helper.make_node("Add", ["acc", "x"], ["t_out"])], "inner_then", [],
                                   [helper.make_tensor_value_info("t_out", F, None)])
    inner_else = helper.make_graph([helper.make_node("Mul", ["acc", "w_scale"], ["e_out"])], "inner_else", [],
                                   [helper.make_tensor_value_info("e_out", F, None)])
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["i_f"], to=F),
         helper.make_node("Less", ["i_f", "half"], ["small"]),
         helper.make_node("If", ["small"], ["acc_if"], then_branch=inner_then, else_branch=inner_else),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["acc_if", "i_f"], ["scan_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_if", F, None),
         helper.make_tensor_value_info("scan_out", F, None)],
    )
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["mm"]),
                                helper.make_node("Add", ["mm", "x"], ["then_y"])], "then", [],
                               [helper.make_tensor_value_info("then_y", F, None)])
    else_g = helper.make_graph([helper.make_node("Loop", ["trips", "true", "x"], ["loop_y", "stacked"], body=body),
                                helper.make_node("ReduceSum", ["stacked", "zero_axis"], ["summed"], keepdims=0),
                                helper.make_node("Add", ["loop_y", "summed"], ["else_y"])],
                               "else", [], [helper.make_tensor_value_info("else_y", F, None)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["positive"]),
             helper.make_node("If", ["positive"], ["y"], then_branch=then_g, else_branch=else_g)]
    inits = [_weight("w", 4, 4), numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(1.5, np.float32), "half"),
             numpy_helper.from_array(np.array(0.7, np.float32), "w_scale"),
             numpy_helper.from_array(np.array(3, np.int64), "trips"),
             numpy_helper.from_array(np.array(True), "true"),
             numpy_helper.from_array(np.array([0], np.int64), "zero_axis")]
    graph = helper.make_graph(nodes, "if_loop", [helper.make_tensor_value_info("x", F, ["batch", 4])],
                              [helper.make_tensor_value_info("y", F, ["batch", 4])], inits)
    return _save(graph, folder, 17)


def _mlp_graph(name: str, *, names: list[str] | None = None) -> onnx.GraphProto:
    """x -> MatMul -> Add -> Relu -> MatMul -> Softmax, node names given (or left empty)."""
    names = names or ["", "", "", "", ""]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name=names[0]),
             helper.make_node("Add", ["h", "b1"], ["hb"], name=names[1]),
             helper.make_node("Relu", ["hb"], ["r"], name=names[2]),
             helper.make_node("MatMul", ["r", "w2"], ["logits"], name=names[3]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=-1, name=names[4])]
    inits = [_weight("w1", 6, 8), _weight("b1", 8), _weight("w2", 8, 3)]
    return helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", F, ["batch", 6])],
                             [helper.make_tensor_value_info("y", F, ["batch", 3])], inits)


def _forget_dims(value: onnx.ValueInfoProto) -> None:
    """Every dim of ``value`` unknown (neither a size nor a name), as some exporters write them."""
    for dim in value.type.tensor_type.shape.dim:
        dim.Clear()


def _value_info_wrong(folder: Path) -> Path:
    """value_info that contradicts the graph (shape and rank), and an output with no shape."""
    graph = _mlp_graph("wrong_vi")
    graph.value_info.extend([helper.make_tensor_value_info("h", F, [5, 5]),
                             helper.make_tensor_value_info("r", F, ["n", 8, 1])])
    _forget_dims(graph.output[0])
    return _save(graph, folder, 17)


def _value_info_missing(folder: Path) -> Path:
    """No value_info and graph inputs/outputs of unknown shape (only the element type)."""
    graph = _mlp_graph("no_vi")
    _forget_dims(graph.input[0])
    _forget_dims(graph.output[0])
    return _save(graph, folder, 17)


def _initializer_inputs(folder: Path) -> Path:
    """IR version 3: every initializer is listed among the graph inputs too."""
    graph = _mlp_graph("ir3")
    graph.input.extend(helper.make_tensor_value_info(t.name, F, list(t.dims)) for t in graph.initializer)
    return _save(graph, folder, 8, ir_version=3)


def _unused(folder: Path) -> Path:
    """An input no node reads, an output that is an input, one that is an initializer, one unused branch."""
    graph = _mlp_graph("unused")
    graph.input.append(helper.make_tensor_value_info("unused_mask", TensorProto.INT64, ["batch", 4]))
    graph.node.append(helper.make_node("Neg", ["r"], ["dead"]))
    graph.output.extend([helper.make_tensor_value_info("x", F, ["batch", 6]),
                         helper.make_tensor_value_info("b1", F, [8])])
    return _save(graph, folder, 17)


def _names_clash(folder: Path) -> Path:
    """Node names equal to value names of other nodes (onnxruntime refuses truly duplicate node names)."""
    return _save(_mlp_graph("clash", names=["y", "x", "w1", "h", "hb"]), folder, 17)


def _names_empty(folder: Path) -> Path:
    """No node names, and value names that look like numbers or contain odd characters."""
    graph = _mlp_graph("empty")
    renames = {"h": "0", "hb": "1:0", "r": "layer/relu:0", "logits": "logits.1"}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    return _save(graph, folder, 17)


def _unsorted(folder: Path) -> Path:
    """Nodes in reverse order (onnxruntime sorts them; the ONNX checker would refuse the file)."""
    graph = _mlp_graph("unsorted")
    nodes = list(graph.node)[::-1]
    graph.ClearField("node")
    graph.node.extend(nodes)
    return _save(graph, folder, 17)


def _ai_onnx_domain(folder: Path) -> Path:
    """The default domain spelled ``ai.onnx`` in the nodes and the opset import."""
    graph = _mlp_graph("ai_onnx")
    for node in graph.node:
        node.domain = "ai.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx", 17)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    return folder / "model.onnx"


def _sparse_initializer(folder: Path) -> Path:
    """A weight stored as a sparse initializer (COO, linear indices)."""
    graph = _mlp_graph("sparse")
    dense = numpy_helper.to_array(graph.initializer[2])  # w2, 8 x 3
    linear = np.array([0, 4, 11, 17, 23], np.int64)
    values = numpy_helper.from_array(dense.reshape(-1)[linear], "w2")
    graph.sparse_initializer.append(helper.make_sparse_tensor(values, numpy_helper.from_array(linear, ""), [8, 3]))
    del graph.initializer[2]
    return _save(graph, folder, 17)


def _scan(folder: Path) -> Path:
    """A Scan whose body emits its state as its scan output too (through an Identity)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "row"], ["acc_out"]), helper.make_node("Identity", ["acc_out"], ["y"])],
        "body", [helper.make_tensor_value_info("acc", F, [4]), helper.make_tensor_value_info("row", F, [4])],
        [helper.make_tensor_value_info("acc_out", F, [4]), helper.make_tensor_value_info("y", F, [4])])
    graph = helper.make_graph([helper.make_node("Scan", ["init", "x"], ["final", "ys"], body=body, num_scan_inputs=1)],
                              "scan", [helper.make_tensor_value_info("x", F, ["seq", 4])],
                              [helper.make_tensor_value_info("final", F, [4]),
                               helper.make_tensor_value_info("ys", F, ["seq", 4])], [_weight("init", 4)])
    return _save(graph, folder, 17)


def _odd_io_names(folder: Path) -> Path:
    """Inputs and outputs named like Python keywords, with dots, colons or a leading digit."""
    nodes = [helper.make_node("Add", ["input.1", "class"], ["out:0"]), helper.make_node("Relu", ["out:0"], ["1x"]),
             helper.make_node("Neg", ["def"], ["self"])]
    graph = helper.make_graph(nodes, "names", [helper.make_tensor_value_info(n, F, ["batch", 3]) for n in ("input.1", "class")]
                              + [helper.make_tensor_value_info("def", F, [2])],
                              [helper.make_tensor_value_info("out:0", F, ["batch", 3]),
                               helper.make_tensor_value_info("1x", F, ["batch", 3]),
                               helper.make_tensor_value_info("self", F, [2])])
    return _save(graph, folder, 17)


def _io_dtypes(folder: Path) -> Path:
    """uint8 image in, float64 head, int32 ids and a bool mask in, uint8 and bool out."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Cast", ["img"], ["f"], to=TensorProto.DOUBLE),
             helper.make_node("Div", ["f", "scale"], ["n"]),
             helper.make_node("ReduceMean", ["n"], ["pooled"], axes=[1, 2], keepdims=0),
             helper.make_node("MatMul", ["pooled", "w64"], ["logits"]),
             helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
             helper.make_node("Cast", ["label"], ["label8"], to=TensorProto.UINT8),
             helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64),
             helper.make_node("Gather", ["emb", "ids64"], ["e"]),
             helper.make_node("Not", ["mask"], ["inverted"])]
    inits = [numpy_helper.from_array(np.array(255.0), "scale"),
             numpy_helper.from_array(rng.standard_normal((3, 5)), "w64"),
             numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "emb")]
    graph = helper.make_graph(nodes, "dtypes", [
        helper.make_tensor_value_info("img", TensorProto.UINT8, ["batch", 8, 8, 3]),
        helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "seq"]),
        helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "seq"])], [
        helper.make_tensor_value_info("logits", TensorProto.DOUBLE, ["batch", 5]),
        helper.make_tensor_value_info("label8", TensorProto.UINT8, ["batch"]),
        helper.make_tensor_value_info("e", F, ["batch", "seq", 4]),
        helper.make_tensor_value_info("inverted", TensorProto.BOOL, ["batch", "seq"])], inits)
    return _save(graph, folder, 17)


def _external_data(folder: Path) -> Path:
    """All weights in one external data file beside the model (in its own folder, not the working one)."""
    path = _export(_vision_module, _image(), VISION_AXES, dynamo=False, opset=17, outputs=["y"])(folder)
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.weights",
              size_threshold=0)
    return path


# --------------------------------------------------------------------------- float16


def _to_float16(build: Callable[[Path], Path], *, keep_io_types: bool, block: tuple[str, ...] = ()) -> Callable[[Path], Path]:
    """``build``'s float32 model in float16, as onnxconverter_common's float16 converter writes it.

    Initializers, Constant values, Cast targets and tensor types become float16; with
    ``keep_io_types`` the graph inputs and outputs stay float32 with Casts at the
    boundaries; ops in ``block`` run in float32 between Casts (a mixed-precision model).
    """

    def build16(folder: Path) -> Path:
        path = build(folder)
        model = onnx.load(path)
        _graph_to_float16(model.graph, keep_io_types, block)
        model.graph.ClearField("value_info")
        onnx.save(model, path)
        return path

    return build16


#: Ops whose non-data inputs stay float32 (as onnxconverter_common's default block list keeps them).
_FLOAT32_ONLY = ("Resize", "Upsample", "Range")


def _graph_to_float16(graph: onnx.GraphProto, keep_io_types: bool, block: tuple[str, ...]) -> None:
    block = (*block, *_FLOAT32_ONLY)
    kept = {name for node in graph.node if node.op_type in block for name in node.input}
    for init in graph.initializer:
        if init.data_type == F and init.name not in kept:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type in block:
            nodes.extend(_blocked(node))
            continue
        if node.op_type == "Constant" and node.output[0] in kept:
            nodes.append(node)
            continue
        for attr in node.attribute:
            if attr.name == "to" and attr.i == F:
                attr.i = TensorProto.FLOAT16
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == F:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
        nodes.append(node)
    for io, cast_in in ((graph.input, True), (graph.output, False)):
        for value in io:
            if value.type.tensor_type.elem_type != F:
                continue
            if not keep_io_types:
                value.type.tensor_type.elem_type = TensorProto.FLOAT16
                continue
            inner = f"{value.name}_fp16"
            for node in nodes:  # an output's consumers read the float16 value too
                for names in (node.input,) if cast_in else (node.input, node.output):
                    names[:] = [inner if n == value.name else n for n in names]
            cast = helper.make_node("Cast", [value.name] if cast_in else [inner], [inner] if cast_in else [value.name],
                                    to=TensorProto.FLOAT16 if cast_in else F, name=f"cast_{value.name}")
            nodes = [cast, *nodes] if cast_in else [*nodes, cast]
    graph.ClearField("node")
    graph.node.extend(nodes)


def _blocked(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """``node`` run in float32: Casts up on its first input, down on its first output."""
    up = helper.make_node("Cast", [node.input[0]], [f"{node.input[0]}_fp32"], to=F)
    node.input[0] = f"{node.input[0]}_fp32"
    down = helper.make_node("Cast", [f"{node.output[0]}_fp32"], [node.output[0]], to=TensorProto.FLOAT16)
    node.output[0] = f"{node.output[0]}_fp32"
    return [up, node, down]


# --------------------------------------------------------------------------- other tools


def _tf2onnx_resnet(folder: Path) -> Path:
    """keras.applications.ResNet50(weights=None) at 32x32 through tf2onnx.convert.from_function."""
    import keras
    import tensorflow as tf
    import tf2onnx

    from fixtures.zoo import randomize_batch_norm

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    randomize_batch_norm(model)
    spec = [tf.TensorSpec([None, 32, 32, 3], tf.float32, name="image")]
    function = tf.function(lambda image: model(image, training=False), input_signature=spec)
    path = folder / "model.onnx"
    tf2onnx.convert.from_function(function, input_signature=spec, opset=15, output_path=str(path))
    return path


def _skl2onnx_pipeline(folder: Path) -> Path:
    """StandardScaler + PCA + LogisticRegression (labels and probabilities, zipmap=False)."""
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_classes=3, random_state=0)
    pipe = make_pipeline(StandardScaler(), PCA(4), LogisticRegression(max_iter=500)).fit(x, y)
    proto = to_onnx(pipe, x[:1].astype(np.float32), options={"zipmap": False})
    path = folder / "model.onnx"
    onnx.save(proto, path)
    return path


def _skl2onnx_forest(folder: Path) -> Path:
    """A GradientBoostingRegressor through skl2onnx (TreeEnsembleRegressor)."""
    from skl2onnx import to_onnx
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor

    x, y = make_regression(n_samples=200, n_features=5, random_state=0)
    proto = to_onnx(GradientBoostingRegressor(n_estimators=10, max_depth=3).fit(x, y), x[:1].astype(np.float32))
    path = folder / "model.onnx"
    onnx.save(proto, path)
    return path


# --------------------------------------------------------------------------- the cases

_legacy_vision = lambda opset: _export(_vision_module, _image(), VISION_AXES, dynamo=False, opset=opset, outputs=["y"])  # noqa: E731
_legacy_seq = lambda opset: _export(_sequence_module, _seq_example, SEQ_AXES, dynamo=False, opset=opset,  # noqa: E731
                                    outputs=["out", "values"])

CASES = [
    # torch.onnx.export(dynamo=True)
    Case("dynamo_bert", _export(_bert, _text_ids(), TEXT_AXES, dynamo=True)),
    Case("dynamo_gpt2_past", _export(_gpt2_past, _gpt2_past_example, GPT2_AXES, dynamo=True)),
    Case("dynamo_bert_unoptimized", _export(_bert, _text_ids(), TEXT_AXES, dynamo=True, optimize=False)),
    Case("dynamo_vit", _export(_vit, _image(), IMAGE_AXES, dynamo=True), vision=True),
    Case("dynamo_whisper_enc", _export(_whisper_encoder, _mel, {"input_features": {0: "batch"}}, dynamo=True)),
    Case("dynamo_spectrogram", _export(_spectrogram, _audio, {"audio": {0: "batch"}}, dynamo=True)),
    Case("dynamo_vision", _export(_vision_module, _image(), VISION_AXES, dynamo=True), vision=True),
    Case("dynamo_sequence", _export(_sequence_module, _seq_example, SEQ_AXES, dynamo=True)),
    Case("onnxscript_functions", _onnxscript_functions),
    # torch.onnx.export(dynamo=False)
    Case("legacy_vision_11", _legacy_vision(11), vision=True),
    Case("legacy_vision_13", _legacy_vision(13), vision=True),
    Case("legacy_sequence_11", _legacy_seq(11)),
    Case("legacy_sequence_13", _legacy_seq(13)),
    Case("legacy_sequence_17", _legacy_seq(17)),
    Case("legacy_keep_initializers", _export(_sequence_module, _seq_example, SEQ_AXES, dynamo=False, opset=13,
                                             outputs=["out", "values"], keep_initializers_as_inputs=True)),
    Case("legacy_bert_17", _export(_bert_hidden, _text_ids(), TEXT_AXES, dynamo=False, opset=17, outputs=["hidden"])),
    # legacy opsets and version conversion
    Case("helper_opset7", _opset7, vision=True),
    Case("helper_opset10", _opset10, vision=True),
    Case("vc_opset7_to_13", _version_converted(_opset7, 13), vision=True),
    Case("vc_vision11_to_18", _version_converted(_legacy_vision(11), 18), vision=True),
    Case("vc_sequence11_to_18", _version_converted(_legacy_seq(11), 18)),
    # float16
    Case("fp16_vision", _to_float16(_legacy_vision(17), keep_io_types=False), vision=True),
    Case("fp16_mixed_vision", _to_float16(_legacy_vision(17), keep_io_types=True, block=("Softmax",)), vision=True),
    Case("fp16_sequence", _to_float16(_legacy_seq(17), keep_io_types=True)),
    # odd structure
    Case("wild_external_data", _external_data, vision=True),
    Case("wild_functions", _make_functions),
    Case("wild_if_loop", _if_loop),
    Case("wild_value_info_wrong", _value_info_wrong),
    Case("wild_value_info_missing", _value_info_missing, inputs=["x:batch x 6"]),
    Case("wild_initializer_inputs", _initializer_inputs),
    Case("wild_unused", _unused),
    Case("wild_names_clash", _names_clash),
    Case("wild_names_empty", _names_empty),
    Case("wild_odd_io_names", _odd_io_names),
    Case("wild_io_dtypes", _io_dtypes),
    Case("wild_unsorted", _unsorted),
    Case("wild_ai_onnx_domain", _ai_onnx_domain),
    Case("wild_sparse_initializer", _sparse_initializer),
    Case("wild_scan_state_output", _scan),
    # other tools
    Case("tf2onnx_resnet50", _tf2onnx_resnet, vision=True),
    Case("skl2onnx_pipeline", _skl2onnx_pipeline),
    Case("skl2onnx_boosting", _skl2onnx_forest),
]

#: Files the ONNX checker refuses and onnxruntime runs (so users have them).
_UNCHECKED = {"wild_unsorted", "wild_ai_onnx_domain"}

_DESTINATION = {"onnx": "converted.onnx", "pt": "converted.pt", "sm": "converted_savedmodel", "tflite": "converted.tflite"}


def _convert(model: str, target: str, source: Path, dst: Path, **kwargs: Any) -> Row:
    """One conversion with parity; a pass the optimizer had to skip (it raised) fails the row too."""
    start = time.perf_counter()
    try:
        result = converter.convert(source, dst, check=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the sweep records every failure and goes on
        return Row(model, target, "FAIL", time.perf_counter() - start, message=_first_line(exc))
    seconds = time.perf_counter() - start
    error, relative, weak = _errors(result)
    failures = getattr(result.passes, "failures", None) or []
    if failures:
        return Row(model, target, "FAIL", seconds, error, relative, weak,
                   "optimizer skipped " + "; ".join(f.describe() for f in failures)[:400])
    return Row(model, target, "weak" if weak else "ok", seconds, error, relative, weak)


def sweep_case(case: Case, targets: list[str], out: Path) -> list[Row]:
    """Write one ONNX file and convert it to every target it takes; one row per target."""
    folder = out / case.name
    folder.mkdir()
    start = time.perf_counter()
    try:
        path = case.build(folder)
        if case.name not in _UNCHECKED:
            onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - the sweep records every failure and goes on
        return [Row(case.name, "build", "FAIL", time.perf_counter() - start, message=_first_line(exc))]
    rows = []
    for target in targets:
        if target == "tflite" and not case.vision:
            continue
        kwargs: dict[str, Any] = {"target_format": "savedmodel"} if target == "sm" else {}
        if case.inputs:
            kwargs["inputs"] = case.inputs
        rows.append(_convert(case.name, target, path, folder / _DESTINATION[target], **kwargs))
    return rows


def main(argv: list[str] | None = None) -> int:
    return run_sweep(argv, __doc__.splitlines()[0], CASES, sweep_case, "bench_sweep_onnx_")


if __name__ == "__main__":
    sys.exit(main())
