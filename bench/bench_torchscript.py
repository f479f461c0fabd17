"""Inference latency: the TorchScript module that crossgraph emits vs onnxruntime.

For the ONNX fixtures (``fixtures/models/onnx/cnn.onnx`` and ``attention.onnx``)
and five of the onnx package's ``light_*.onnx`` zoo models, converts the model
with ``converter.backends.torchscript.script`` and times, at batch 1 on the CPU
with ``--threads`` intra-op threads (1 by default) for both runtimes, the
scripted module (under ``torch.inference_mode``), the same module frozen
(``script(..., freeze=True)``) and an onnxruntime CPU session on the same random
input: the median of ``--repeat`` runs after ``--warmup`` runs. Prints each median,
the ratios TorchScript / onnxruntime (above 1: the emitted module is slower) and
their geometric means, so a regression in generated code shows.

Times are the process's CPU time by default: on a machine shared with other jobs,
wall-clock medians swing by 2x while CPU time stays put (both runtimes run on the
calling thread with one thread). ``--wall`` measures wall-clock time instead.
Run from the repository root: ``python bench/bench_torchscript.py [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ir  # noqa: E402

ZOO = ("light_squeezenet", "light_shufflenet", "light_inception_v1", "light_bvlc_alexnet", "light_resnet50")


def _models() -> dict[str, Path]:
    import onnx

    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    found = {
        name: ROOT / "fixtures" / "models" / "onnx" / f"{name}.onnx"
        for name in ("cnn", "attention")
    }
    found.update({name: light / f"{name}.onnx" for name in ZOO})
    return {name: path for name, path in found.items() if path.exists()}


def _feed(model: ir.Model) -> dict[str, np.ndarray]:
    """Random batch-1 inputs (symbolic dims become 1, or 8 past the batch axis)."""
    rng = np.random.default_rng(0)
    feed = {}
    for value in model.graph.inputs:
        if value.is_initializer():
            continue
        dims = [
            d if isinstance(d, int) else (1 if i == 0 else 8)
            for i, d in enumerate(value.shape or [])
        ]
        dtype = value.dtype.numpy() if value.dtype is not None else np.float32
        if np.issubdtype(dtype, np.integer):
            feed[value.name] = rng.integers(0, 4, dims).astype(dtype)
        else:
            feed[value.name] = rng.standard_normal(dims).astype(dtype)
    return feed


def _median_ms(fn: Callable[[], object], warmup: int, repeat: int, clock: Callable[[], float]) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return 1000 * statistics.median(times)


def bench(path: Path, warmup: int, repeat: int, threads: int, clock: Callable[[], float]) -> tuple[float, float, float]:
    """Median milliseconds of (TorchScript, frozen TorchScript, onnxruntime) for one model."""
    import onnxruntime as ort
    import torch

    from converter.backends import torchscript

    model = ir.load(path)
    feed = _feed(model)
    module = torchscript.script(model)
    frozen = torchscript.script(model, freeze=True)
    args = [torch.from_numpy(a) for a in feed.values()]

    def runner(m: object) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return m(*args)

        return run

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return (
        _median_ms(runner(module), warmup, repeat, clock),
        _median_ms(runner(frozen), warmup, repeat, clock),
        _median_ms(lambda: session.run(None, feed), warmup, repeat, clock),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both runtimes")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not the process's CPU time")
    options = parser.parse_args()
    import torch

    torch.set_num_threads(options.threads)
    clock = time.perf_counter if options.wall else time.process_time
    print(f"{'model':<20} {'torchscript ms':>15} {'frozen ms':>10} {'onnxruntime ms':>15} {'ratio':>7} {'frozen':>7}")
    ratios: list[tuple[float, float]] = []
    for name, path in _models().items():
        ts_ms, frozen_ms, ort_ms = bench(path, options.warmup, options.repeat, options.threads, clock)
        ratios.append((ts_ms / ort_ms, frozen_ms / ort_ms))
        print(f"{name:<20} {ts_ms:>15.2f} {frozen_ms:>10.2f} {ort_ms:>15.2f} {ratios[-1][0]:>7.2f} {ratios[-1][1]:>7.2f}")
    geomean = [math.exp(statistics.fmean(math.log(r[i]) for r in ratios)) for i in (0, 1)]
    print(f"{'geomean':<20} {'':>15} {'':>10} {'':>15} {geomean[0]:>7.2f} {geomean[1]:>7.2f}")


if __name__ == "__main__":
    main()
