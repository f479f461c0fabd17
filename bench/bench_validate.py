"""What ``validate`` costs on ResNet-50-sized models, relative to one forward pass of each side.

Models (random weights, 224x224 images, batch 2 as parity's random inputs use):

- Keras: ``keras.applications.ResNet50(weights=None)`` saved as ``.keras``,
  converted to ONNX;
- PyTorch: a ResNet-50-like module written here (bottleneck blocks 3-4-6-3,
  no torchvision), exported as an ExportedProgram ``.pt2``, converted to ONNX
  and to TorchScript.

For each pair: ``converter.validate(source, converted, batches=1)`` wall time
(it loads both sides, makes inputs, runs each once, compares), and one forward
pass of each side already loaded (the median of a few, after a warm-up); the
ratios are validate / forward. ``--localize`` also times localization against
the source on a corrupted copy of the ONNX result.

    .venv/bin/python bench/bench_validate.py [--repeats 3] [--skip-keras] [--skip-torch] [--localize]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import converter  # noqa: E402

BATCH = 2


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocation and kernel selection are not a forward pass
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def _onnx_forward(path: pathlib.Path, x: np.ndarray) -> Callable[[], object]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})


def _torchscript_forward(path: pathlib.Path, x: np.ndarray) -> Callable[[], object]:
    import torch

    module = torch.jit.load(str(path))
    tx = torch.from_numpy(x)

    def run() -> object:
        with torch.no_grad():
            return module(tx)

    return run


def resnet50_like():
    """A ResNet-50-shaped torch module: stem, bottlenecks [3, 4, 6, 3] (256..2048 channels), fc 1000."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * 4
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet50Like(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
            self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            layers, cin = [], 64
            for i, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
                stage = []
                for b in range(blocks):
                    stage.append(Bottleneck(cin, width, 2 if b == 0 and i > 0 else 1))
                    cin = width * 4
                layers.append(nn.Sequential(*stage))
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(x.mean((2, 3), keepdim=True), 1))

    torch.manual_seed(0)
    return ResNet50Like().eval()


def _row(label: str, validate_s: float, forwards: dict[str, float]) -> None:
    parts = ", ".join(f"{side} forward {s * 1000:.0f} ms -> x{validate_s / s:.1f}" for side, s in forwards.items())
    print(f"{label}: validate {validate_s:.2f} s; {parts}", flush=True)


def _localize_row(label: str, source: pathlib.Path, onnx_path: pathlib.Path, forward_s: float, tmp: pathlib.Path) -> None:
    """Time ``validate --localize`` on a copy of the ONNX result with its last Conv's weight perturbed."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    node = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    init = next(t for t in model.graph.initializer if t.name == node.input[1])
    signs = np.random.default_rng(0).choice(np.array([-1.0, 1.0], np.float32), size=tuple(init.dims))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 1e-2 * signs, init.name))
    wrong = tmp / f"{onnx_path.stem}.wrong.onnx"
    onnx.save(model, str(wrong))
    seconds, report = _timed(lambda: converter.validate(source, wrong, batches=1, localize=True))
    loc = report.localization or {}
    print(f"{label} localize: {seconds:.2f} s (x{seconds / forward_s:.0f} the source forward); "
          f"{loc.get('summary') or loc.get('error')}", flush=True)


def bench_keras(tmp: pathlib.Path, repeats: int, localize: bool) -> None:
    import keras

    model = keras.applications.ResNet50(weights=None)
    source = tmp / "resnet50.keras"
    model.save(source)
    onnx_path = tmp / "resnet50_keras.onnx"
    convert_s, _ = _timed(lambda: converter.convert(source, onnx_path, check=False))
    x = np.random.default_rng(0).standard_normal((BATCH, 224, 224, 3)).astype(np.float32)
    forwards = {
        "keras": _median_seconds(lambda: model(x, training=False), repeats),
        "onnxruntime": _median_seconds(_onnx_forward(onnx_path, x), repeats),
    }
    validate_s, report = _timed(lambda: converter.validate(source, onnx_path, batches=1))
    print(f"keras ResNet50 -> ONNX (convert {convert_s:.1f} s): {report.summary()}")
    _row("keras ResNet50 vs ONNX", validate_s, forwards)
    if localize:
        _localize_row("keras ResNet50 vs ONNX", source, onnx_path, forwards["keras"], tmp)


def bench_torch(tmp: pathlib.Path, repeats: int, localize: bool) -> None:
    import torch

    module = resnet50_like()
    x = np.random.default_rng(0).standard_normal((BATCH, 3, 224, 224)).astype(np.float32)
    tx = torch.from_numpy(x)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(module, (tx,), dynamic_shapes=({0: batch},))
    source = tmp / "resnet50_like.pt2"
    torch.export.save(program, source)

    def eager() -> object:
        with torch.no_grad():
            return module(tx)

    source_forward = _median_seconds(eager, repeats)
    for suffix, side, forward in ((".onnx", "onnxruntime", _onnx_forward), (".pt", "torchscript", _torchscript_forward)):
        target = tmp / f"resnet50_like{suffix}"
        convert_s, _ = _timed(lambda target=target: converter.convert(source, target, check=False))
        target_forward = _median_seconds(forward(target, x), repeats)
        validate_s, report = _timed(lambda target=target: converter.validate(source, target, batches=1))
        print(f"torch ResNet-50-like -> {suffix} (convert {convert_s:.1f} s): {report.summary()}")
        _row(f"torch ResNet-50-like vs {suffix}", validate_s, {"torch eager": source_forward, side: target_forward})
        if localize and suffix == ".onnx":
            _localize_row("torch ResNet-50-like vs .onnx", source, target, source_forward, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="forward passes timed per side (median)")
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--localize", action="store_true", help="also time localization on a corrupted copy")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_torch:
            bench_torch(pathlib.Path(tmp), args.repeats, args.localize)
        if not args.skip_keras:
            bench_keras(pathlib.Path(tmp), args.repeats, args.localize)


if __name__ == "__main__":
    main()
