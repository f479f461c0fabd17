"""Robustness sweep: convert architectures the test suite does not cover, and check each result.

Every model is built small with random weights (transformers from small config
objects, ``keras.applications`` with ``weights=None``, and hand-written torch
modules exercising single ops); nothing is downloaded. Per model:

- ``onnx``: the live model to ``.onnx`` with ``check=True`` (parity against the
  framework itself);
- ``pt``, ``sm``: that ONNX file to TorchScript and to a SavedModel directory,
  each checked against the ONNX file;
- ``tflite``: that ONNX file to ``.tflite`` (vision models only).

A target whose ONNX step failed is reported as skipped. The table has one row per
model and target: ok/weak/unchecked/FAIL (``unchecked``: converted, but no runtime could check it; ``refused``: a model that must fail with a
clear error did), seconds, the worst max-abs error over the outputs,
the worst error relative to its output's scale (``max|a - b| / max|b|``, ``b`` the
reference), and the error's first line. A check is *weak* when a reference output
is near zero or about constant (random-weight models often give such outputs):
agreeing with it proves little, so the row names those outputs. Exit status 1
when any row failed.

Hand-written PyTorch modules (``torch_*``, in ``bench/sweep_torch_models.py``)
exercise what user code does: attention with masks, the transformer encoder
and decoder, resampling, scans, scatters, sorting, ``torch.cond``, nested
inputs and outputs, train mode, buffers updated in ``forward``, and int, bool,
float64 and half-precision inputs. Besides these, ``keras.applications``, a TensorFlow group
(``tf_*``) builds Keras 3 functional and subclassed models, ``tf.function`` objects,
a Keras 2 (``tf_keras``) model live and as ``.h5``, a SavedModel and a frozen
GraphDef, covering layers and ops the test suite does not.

Run from the repository root:
``nice .venv/bin/python bench/sweep_models.py [--only AlbertModel,ResNet50V2] [--targets onnx,pt,sm,tflite]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep_tf_models import (  # noqa: E402
    SAVE_ROOT,
    keras_attention_layers,
    keras_control_flow,
    keras_conv1d,
    keras_conv2d_family,
    keras_preprocessing,
    keras_recurrent,
    keras_text_attention,
    keras_transformer_block,
    keras_unet,
    tf_frozen_graphdef,
    tf_keras_h5,
    tf_keras_sequential,
    tf_model,
    tf_savedmodel,
    tf_signal,
    tf_tensor_ops,
)
from sweep_torch_models import cases as torch_cases  # noqa: E402

import converter  # noqa: E402

TARGETS = ("onnx", "pt", "sm", "tflite")
TEXT = ["input_ids:batch x seq:int64"]
VOCAB = 100


@dataclasses.dataclass
class Case:
    """One model of the sweep: how to build it, its inputs, whether it is a vision model.

    ``inputs`` are spec strings, or a function returning example inputs (tensors,
    or the nested dict/tuple that ``forward`` takes). ``refusal``, where set, is
    the error the ONNX step must raise (a regular expression over its first
    line): the row is ``refused`` when it does, ``FAIL`` when it converts or
    fails otherwise.
    """

    name: str
    build: Callable[[], Any]
    inputs: list[str] | Callable[[], Any] | None = None
    vision: bool = False
    refusal: str | None = None


@dataclasses.dataclass
class Row:
    """One line of the table."""

    model: str
    target: str
    status: str
    seconds: float = 0.0
    error: float | None = None
    relative: float | None = None
    weak: str = ""
    message: str = ""


# --------------------------------------------------------------------------- builders


def hf(model_cls: str, config_cls: str, encoder: bool = False, **config: Any) -> Callable[[], Any]:
    """A builder for a transformers model from a small config, in eval mode, seeded."""

    def build() -> Any:
        import torch
        import transformers

        torch.manual_seed(0)
        model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**config)).eval()
        return model.get_encoder() if encoder else model

    return build


def keras_app(name: str, size: int) -> Callable[[], Any]:
    """A builder for a ``keras.applications`` model with random weights at ``size`` x ``size``."""

    def build() -> Any:
        import keras

        keras.utils.set_random_seed(0)
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))

    return build


def torch_module(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A builder for a hand-written torch module (the factory defines the class lazily)."""

    def build() -> Any:
        import torch

        torch.manual_seed(0)
        return factory().eval()

    return build


def _conv_stack() -> Any:
    """Conv1d, ConvTranspose2d, GroupNorm and bilinear interpolate."""
    import torch
    from torch import nn

    class ConvStack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1d = nn.Conv1d(4, 8, 3, padding=1, dilation=1)
            self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
            self.norm = nn.GroupNorm(2, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b = x.shape[0]
            y = self.conv1d(x)  # b x 8 x 16
            y = y.reshape(b, 8, 4, 4)
            y = self.norm(self.up(y))  # b x 6 x 8 x 8
            return nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)

    return ConvStack()


def _tensor_ops() -> Any:
    """einsum, topk, cumsum and masked_fill."""
    import torch
    from torch import nn

    class TensorOps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Parameter(torch.randn(8, 8))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            scores = torch.einsum("bsd,de,bte->bst", x, self.proj, x)
            masked = scores.masked_fill(scores < 0, -1.0)
            values, indices = torch.topk(masked, 3, dim=-1)
            return torch.cumsum(values, dim=-1), indices, torch.cumsum(x, dim=1)

    return TensorOps()


def _embedding_bag() -> Any:
    """nn.EmbeddingBag (mean and sum) over fixed-size bags."""
    import torch
    from torch import nn

    class Bags(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean = nn.EmbeddingBag(VOCAB, 8, mode="mean")
            self.sum = nn.EmbeddingBag(VOCAB, 8, mode="sum")

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.mean(ids), self.sum(ids)], dim=-1)

    return Bags()


def _recurrent() -> Any:
    """Bidirectional LSTM and GRU, two layers, batch first."""
    import torch
    from torch import nn

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 6, num_layers=2, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(12, 5, batch_first=True, bidirectional=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.lstm(x)
            z, _ = self.gru(y)
            return z

    return Recurrent()


def _vision(size: int = 32) -> list[str]:
    return [f"pixel_values:batch x 3 x {size} x {size}"]


TINY_BERT = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TINY_DECODER = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, use_cache=False)
TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                image_size=32, patch_size=8)

CASES = [
    # transformers, text
    Case("AlbertModel", hf("AlbertModel", "AlbertConfig", embedding_size=16, **TINY_BERT), TEXT),
    Case("BartEncoder", hf("BartModel", "BartConfig", encoder=True, vocab_size=VOCAB, d_model=32, encoder_layers=2,
                           decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, decoder_start_token_id=2, max_position_embeddings=64), TEXT),
    Case("ElectraModel", hf("ElectraModel", "ElectraConfig", embedding_size=16, **TINY_BERT), TEXT),
    Case("DebertaV2Model", hf("DebertaV2Model", "DebertaV2Config", **TINY_BERT), TEXT),
    Case("MPNetModel", hf("MPNetModel", "MPNetConfig", **TINY_BERT), TEXT),
    Case("MobileBertModel", hf("MobileBertModel", "MobileBertConfig", vocab_size=VOCAB, hidden_size=32,
                               embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=32, intra_bottleneck_size=16, true_hidden_size=16,
                               num_feedforward_networks=2), TEXT),
    Case("OPTModel", hf("OPTModel", "OPTConfig", vocab_size=VOCAB, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                        num_attention_heads=2, word_embed_proj_dim=32, pad_token_id=1, bos_token_id=2,
                        eos_token_id=2, use_cache=False), TEXT),
    Case("BloomModel", hf("BloomModel", "BloomConfig", vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=2,
                          use_cache=False), TEXT),
    Case("GPTNeoModel", hf("GPTNeoModel", "GPTNeoConfig", vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=2,
                           attention_types=[[["global", "local"], 1]], window_size=4, max_position_embeddings=64,
                           bos_token_id=0, eos_token_id=0, use_cache=False), TEXT),
    Case("FalconModel", hf("FalconModel", "FalconConfig", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, use_cache=False, bos_token_id=0, eos_token_id=0), TEXT),
    Case("PhiModel", hf("PhiModel", "PhiConfig", **TINY_DECODER), TEXT),
    Case("Qwen2Model", hf("Qwen2Model", "Qwen2Config", **TINY_DECODER), TEXT),
    Case("GemmaModel", hf("GemmaModel", "GemmaConfig", head_dim=8, **TINY_DECODER), TEXT),
    # transformers, vision
    Case("SegformerModel", hf("SegformerModel", "SegformerConfig", num_encoder_blocks=2, depths=[1, 1],
                              sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3], strides=[4, 2],
                              num_attention_heads=[1, 2], mlp_ratios=[2, 2]), _vision(), True),
    Case("DeiTModel", hf("DeiTModel", "DeiTConfig", **TINY_VIT), _vision(), True),
    Case("BeitModel", hf("BeitModel", "BeitConfig", use_relative_position_bias=True, **TINY_VIT), _vision(), True),
    Case("Dinov2Model", hf("Dinov2Model", "Dinov2Config", **TINY_VIT), _vision(), True),
    Case("ResNetModel", hf("ResNetModel", "ResNetConfig", embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                           layer_type="bottleneck"), _vision(), True),
    Case("MobileNetV2Model", hf("MobileNetV2Model", "MobileNetV2Config", depth_multiplier=0.35, image_size=32),
         _vision(), True),
    Case("MobileViTModel", hf("MobileViTModel", "MobileViTConfig", image_size=32, hidden_sizes=[16, 24, 32],
                              neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32]), _vision(), True),
    Case("ConvNextV2Model", hf("ConvNextV2Model", "ConvNextV2Config", hidden_sizes=[8, 16], depths=[1, 1],
                               num_stages=2), _vision(), True),
    Case("PoolFormerModel", hf("PoolFormerModel", "PoolFormerConfig", hidden_sizes=[8, 16], depths=[1, 1],
                               num_encoder_blocks=2, patch_sizes=[7, 3], strides=[4, 2], padding=[2, 1]),
         _vision(), True),
    Case("LevitModel", hf("LevitModel", "LevitConfig", image_size=32, hidden_sizes=[16, 32], num_attention_heads=[1, 2],
                          depths=[1, 1], key_dim=[8, 8], down_ops=[["Subsample", 8, 1, 4, 2, 2]],
                          attention_ratio=[2, 2], mlp_ratio=[2, 2]), _vision(), True),
    Case("YolosModel", hf("YolosModel", "YolosConfig", image_size=[32, 32], num_detection_tokens=4, **{
        k: v for k, v in TINY_VIT.items() if k != "image_size"}), _vision(), True),
    # keras.applications
    Case("ResNet50V2", keras_app("ResNet50V2", 32), vision=True),
    Case("InceptionResNetV2", keras_app("InceptionResNetV2", 75), vision=True),
    Case("MobileNetV3Large", keras_app("MobileNetV3Large", 32), vision=True),
    Case("EfficientNetV2S", keras_app("EfficientNetV2S", 32), vision=True),
    Case("DenseNet169", keras_app("DenseNet169", 32), vision=True),
    Case("MobileNet", keras_app("MobileNet", 32), vision=True),  # Keras 3 has no RegNet
    Case("ConvNeXtSmall", keras_app("ConvNeXtSmall", 32), vision=True),
    # hand-written torch modules
    Case("torch_conv_stack", torch_module(_conv_stack), ["x:batch x 4 x 16"], True),
    Case("torch_tensor_ops", torch_module(_tensor_ops), ["x:batch x seq x 8"]),
    Case("torch_embedding_bag", torch_module(_embedding_bag), ["ids:batch x 6:int64"]),
    Case("torch_recurrent", torch_module(_recurrent), ["x:batch x seq x 8"]),
    # TensorFlow / Keras, built in-process
    *torch_cases(Case),  # bench/sweep_torch_models.py
    Case("tf_conv1d", tf_model(keras_conv1d)),
    Case("tf_conv2d_family", tf_model(keras_conv2d_family), vision=True),
    Case("tf_unet", tf_model(keras_unet), vision=True),
    Case("tf_text_attention", tf_model(keras_text_attention)),
    Case("tf_recurrent", tf_model(keras_recurrent)),
    Case("tf_attention_layers", tf_model(keras_attention_layers)),
    Case("tf_transformer_block", tf_model(keras_transformer_block)),
    Case("tf_control_flow", tf_model(keras_control_flow), ["x:batch x 5"]),
    Case("tf_preprocessing", tf_model(keras_preprocessing), vision=True),
    Case("tf_tensor_ops", tf_model(tf_tensor_ops)),
    Case("tf_signal", tf_model(tf_signal)),
    Case("tf_keras2_sequential", tf_model(tf_keras_sequential), vision=True),
    Case("tf_keras2_h5", tf_model(tf_keras_h5), vision=True),
    Case("tf_savedmodel", tf_model(tf_savedmodel)),
    Case("tf_frozen_graphdef", tf_model(tf_frozen_graphdef)),
]


# --------------------------------------------------------------------------- running


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


#: A reference output whose largest magnitude is below this is "near zero": a check against it is weak.
NEAR_ZERO = 1e-4
#: A reference output whose spread (max - min) is below this fraction of its magnitude is "~constant".
CONSTANT_SPREAD = 1e-4


def _weakness(output: Any) -> str:
    """``"near zero"``, ``"constant"`` or ``""``: why agreement with this reference output proves
    little (stricter than the parity report's own flag, which warns users)."""
    magnitude, spread = output.reference_magnitude, output.reference_spread
    if magnitude is None or not output.dtype.startswith(("float", "bfloat")):
        return ""
    if magnitude < NEAR_ZERO:
        return "near zero"
    if (spread or 0.0) <= CONSTANT_SPREAD * magnitude:
        return "constant"
    return ""


def _errors(result: Any) -> tuple[float | None, float | None, str]:
    """Worst max-abs error, worst error relative to its output's scale, and the weak outputs."""
    outputs = getattr(result.parity, "outputs", None) or []
    absolute = [o.max_abs_error for o in outputs if o.max_abs_error is not None]
    relative = [
        o.max_abs_error / max(o.reference_magnitude, np.finfo(np.float64).tiny)
        for o in outputs
        if o.max_abs_error is not None and o.reference_magnitude is not None
    ]
    weak = [f"{o.name} {_weakness(o)}" for o in outputs if _weakness(o)]
    return (max(absolute) if absolute else None), (max(relative) if relative else None), ", ".join(weak)


def _convert(model: str, target: str, source: Any, dst: Path, **kwargs: Any) -> tuple[Row, bool]:
    start = time.perf_counter()
    try:
        result = converter.convert(source, dst, check=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the sweep records every failure and goes on
        return Row(model, target, "FAIL", time.perf_counter() - start, message=_first_line(exc)), False
    if result.parity is None:  # converted, but no runtime could check it (the note says why)
        return Row(model, target, "unchecked", time.perf_counter() - start,
                   message=getattr(result, "parity_note", "") or ""), True
    error, relative, weak = _errors(result)
    status = "weak" if weak else "ok"
    return Row(model, target, status, time.perf_counter() - start, error, relative, weak), True


def _refused(row: Row, refusal: str) -> Row:
    """The ONNX row of a model that must be refused: ``refused`` when the error matches, else ``FAIL``."""
    if row.status == "FAIL" and re.search(refusal, row.message):
        return dataclasses.replace(row, status="refused")
    expected = f"expected an error matching {refusal!r}"
    return dataclasses.replace(row, status="FAIL", message=f"{expected}, got: {row.message or 'no error'}")


def sweep_case(case: Case, targets: list[str], out: Path) -> list[Row]:
    """Convert one model to every target it takes; one row per target."""
    start = time.perf_counter()
    try:
        model = case.build()
    except Exception as exc:  # noqa: BLE001
        return [Row(case.name, "build", "FAIL", time.perf_counter() - start, message=_first_line(exc))]
    onnx_path = out / f"{case.name}.onnx"
    inputs = case.inputs() if callable(case.inputs) else case.inputs
    row, onnx_ok = _convert(case.name, "onnx", model, onnx_path, inputs=inputs)
    if case.refusal is not None:
        return [_refused(row, case.refusal)] if "onnx" in targets else []
    rows = [row] if "onnx" in targets else []
    for target in targets:
        if target == "onnx" or (target == "tflite" and not case.vision):
            continue
        if not onnx_ok:
            rows.append(Row(case.name, target, "skip", message="no ONNX file"))
            continue
        kwargs = {"target_format": "savedmodel"} if target == "sm" else {}
        dst = out / {"pt": f"{case.name}.pt", "sm": f"{case.name}_savedmodel", "tflite": f"{case.name}.tflite"}[target]
        rows.append(_convert(case.name, target, onnx_path, dst, **kwargs)[0])
    return rows


def print_row(row: Row) -> None:
    error = "" if row.error is None else f"{row.error:.2g}"
    relative = "" if row.relative is None else f"{row.relative:.2g}"
    note = row.message or (f"weak check: {row.weak}" if row.weak else "")
    print(f"{row.model:<26} {row.target:<7} {row.status:<5} {row.seconds:7.1f} {error:>9} {relative:>9}  {note}",
          flush=True)


def run_sweep(argv: list[str] | None, description: str, cases: list[Any], sweep: Callable[..., list[Row]],
              prefix: str, on_start: Callable[[Path], None] | None = None) -> int:
    """The command line both sweeps share: pick cases and targets, print a row per result.

    ``sweep(case, targets, folder)`` converts one case; ``on_start`` sees the temporary folder.
    Returns the exit status: 1 when any row failed.
    """
    by_name = {case.name: case for case in cases}
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: onnx,pt,sm,tflite")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(by_name)
    unknown = [n for n in names if n not in by_name]
    targets = [t for t in args.targets.split(",") if t]
    if unknown or set(targets) - set(TARGETS):
        parser.error(f"unknown models {unknown} or targets {targets}; models: {', '.join(by_name)}")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    print(f"{'model':<26} {'target':<7} {'ok':<5} {'seconds':>7} {'max err':>9} {'rel err':>9}  error")
    failed = 0
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        if on_start is not None:
            on_start(Path(tmp))
        for name in names:
            for row in sweep(by_name[name], targets, Path(tmp)):
                print_row(row)
                failed += row.status == "FAIL"
    print(f"{failed} failure(s)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    def keep_saved_models_in(folder: Path) -> None:
        SAVE_ROOT[:] = [folder]

    return run_sweep(argv, __doc__.splitlines()[0], CASES, sweep_case, "bench_sweep_", keep_saved_models_in)


if __name__ == "__main__":
    sys.exit(main())
