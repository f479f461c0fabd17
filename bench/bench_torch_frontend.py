"""Conversion time: crossgraph's PyTorch front end vs ``torch.onnx.export``.

For the ResNet-like and transformer fixtures (built from their factories, with a
dynamic batch, and a dynamic sequence for the transformer), times

- crossgraph: ``converter.frontends.torch.load`` (export + decompose + translate + verify)
  plus ``ir.to_proto`` (so every route ends with an ONNX ModelProto);
- ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript's translation + optimizer);
- ``torch.onnx.export(..., dynamo=False)`` (the TorchScript tracer-based exporter);
- crossgraph's translation stage alone (on an already exported and decomposed
  program), to show how much of its time is ``torch.export`` itself;

takes the median of ``--repeat`` runs (after one warm-up) and prints each exporter's
time relative to crossgraph's. Run from the repository root:
``python bench/bench_torch_frontend.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import ir  # noqa: E402
from converter.frontends.torch import load  # noqa: E402
from converter.frontends.torch.export import exported_program  # noqa: E402
from converter.frontends.torch.translate import Translator  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402
from fixtures.build_torch_fixtures import SPECS, example  # noqa: E402

MODELS = ("resnet_like", "transformer")


def crossgraph(module: torch.nn.Module, spec: list, args: tuple) -> None:
    model = load(module, format="torch", inputs=[InputSpec(n, s, d) for n, s, d in spec])
    ir.to_proto(model)


def crossgraph_translate_only(module: torch.nn.Module, spec: list, args: tuple) -> Callable[[], None]:
    """The translation stage alone (translate, verify, to_proto), on a prepared program."""
    program = exported_program(module, format="torch", inputs=[InputSpec(n, s, d) for n, s, d in spec])

    def run() -> None:
        model = Translator(program.ep, program.input_names, program.symbols, program.output_names).run()
        ir.verify(model)
        ir.to_proto(model)

    return run


def onnx_dynamo(module: torch.nn.Module, spec: list, args: tuple) -> None:
    dims = {s: torch.export.Dim(s, min=1, max=64) for _, shape, _ in spec for s in shape if isinstance(s, str)}
    dynamic = tuple({i: dims[d] for i, d in enumerate(shape) if isinstance(d, str)} for _, shape, _ in spec)
    torch.onnx.export(module, args, dynamo=True, dynamic_shapes=dynamic, verbose=False)


def onnx_torchscript(module: torch.nn.Module, spec: list, args: tuple) -> None:
    axes = {n: {i: d for i, d in enumerate(shape) if isinstance(d, str)} for n, shape, _ in spec}
    torch.onnx.export(
        module, args, io.BytesIO(), dynamo=False, input_names=[n for n, _, _ in spec], dynamic_axes=axes
    )


EXPORTERS: dict[str, Callable[..., None]] = {
    "crossgraph": crossgraph,
    "torch.onnx dynamo=True": onnx_dynamo,
    "torch.onnx dynamo=False": onnx_torchscript,
}


def median_time(fn: Callable[[], None], repeat: int) -> float:
    fn()  # warm-up: imports, first-call caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # torch.onnx logs one line per missing torchvision op
    print(f"{'model':<12} {'exporter':<26} {'median s':>9} {'x crossgraph':>13}")
    for name in MODELS:
        factory, spec, _ = SPECS[name]
        torch.manual_seed(0)
        module = factory().eval()
        args = example(spec, {"batch": 3, "seq": 5})
        base = None
        for label, exporter in EXPORTERS.items():
            seconds = median_time(functools.partial(exporter, module, spec, args), opts.repeat)
            base = base or seconds
            print(f"{name:<12} {label:<26} {seconds:>9.3f} {seconds / base:>12.2f}x", flush=True)
        seconds = median_time(crossgraph_translate_only(module, spec, args), opts.repeat)
        label = "  of which translation"
        print(f"{name:<12} {label:<26} {seconds:>9.3f} {seconds / base:>12.2f}x", flush=True)


if __name__ == "__main__":
    main()
