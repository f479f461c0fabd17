"""What seeing a conversion costs: the TensorBoard graphs and the HTML report, against the conversion.

For the largest fixture (by default ``fixtures/models/torch/resnet_like.pt2``,
or any model given), and optionally a ResNet-50-like module
(``bench_validate.resnet50_like``): the conversion to ONNX
(``converter.convert``, load + passes + save + parity check), then, timed
apart, writing the source and the result as TensorBoard graphs
(``tensorboard.write_side_by_side``, shape inference included) and rendering
the HTML report of the conversion's parity and pass reports
(``html_report.write``). Each is printed as a fraction of the conversion time
(the median of ``--repeats`` runs).

    .venv/bin/python bench/bench_visual.py [MODEL] [--repeats 3] [--resnet50]
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

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import converter  # noqa: E402
import ir  # noqa: E402
from converter.visual import html_report, tensorboard  # noqa: E402

LARGEST_FIXTURE = REPO / "fixtures" / "models" / "torch" / "resnet_like.pt2"


def _median(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(source: pathlib.Path | object, label: str, tmp: pathlib.Path, repeats: int) -> None:
    destination = tmp / "converted.onnx"
    results = []
    convert_s = _median(lambda: results.append(converter.convert(source, destination)), repeats)
    result = results[-1]
    source_model = converter.load(source)
    converted_model = ir.load(destination)
    nodes = sum(1 for _ in source_model.graph), sum(1 for _ in converted_model.graph)
    tb_s = _median(lambda: tensorboard.write_side_by_side(source_model, converted_model, tmp / "tb"), repeats)
    report_s = _median(lambda: html_report.write(tmp / "report.html", result.parity, pass_report=result.passes,
                                                 localization=result.parity.localization), repeats)
    size = (tmp / "report.html").stat().st_size
    print(f"{label}: {nodes[0]} -> {nodes[1]} nodes; convert {convert_s:.2f} s "
          f"({', '.join(f'{k} {v:.2f}' for k, v in result.seconds.items())})")
    print(f"  TensorBoard graphs (source + converted): {tb_s * 1000:.0f} ms = {tb_s / convert_s:.1%} of the conversion")
    print(f"  HTML report ({size / 1024:.0f} KiB): {report_s * 1000:.1f} ms = {report_s / convert_s:.2%} of the conversion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default=str(LARGEST_FIXTURE))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resnet50", action="store_true", help="also a ResNet-50-like torch module")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        bench(pathlib.Path(args.model), pathlib.Path(args.model).name, pathlib.Path(tmp), args.repeats)
        if args.resnet50:
            import torch

            sys.path.insert(0, str(REPO / "bench"))
            from bench_validate import resnet50_like

            module = resnet50_like()
            program = torch.export.export(module, (torch.randn(2, 3, 224, 224),))
            torch.export.save(program, pathlib.Path(tmp) / "resnet50_like.pt2")
            bench(pathlib.Path(tmp) / "resnet50_like.pt2", "ResNet-50-like (.pt2)", pathlib.Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
