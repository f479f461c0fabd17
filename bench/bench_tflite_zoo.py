"""The model zoo to TFLite, float32 and ``--quantize fp16``, against the source framework itself.

Models (random weights, fixed seeds, no hub):
- keras.applications ResNet50, MobileNetV2, EfficientNetB0, DenseNet121 at 96x96
  (logits; batch-norm statistics randomized so that the logits are not ~0);
- transformers BertModel, GPT2Model, ViTModel from small configs (as
  ``fixtures/zoo.py`` builds them for the tests and benches).

Each source is loaded and optimized (-O2) once, then written twice with the TFLite
back end. A conversion that TFLite refuses because of dynamic dims is retried with
every symbol given a size (batch 2, others 5), as a user would with ``--input``,
and the row says so. Each file runs in LiteRT on the same random batch as the
live Keras / PyTorch model, which is the truth; per model and precision:

- max abs error / scale, where scale is the source output's max magnitude
  (the worst output of the model);
- cosine similarity (the worst output) and, for the classifiers, top-1 agreement;
- the parity verdict of ``converter.validate`` (fp16 passes at cosine >= 0.999
  with top-1 agreement, as ``convert --quantize fp16`` checks);
- TFLite op count, file size, and the back end's seconds.

Run from the repository root: ``.venv/bin/python bench/bench_tflite_zoo.py [--only ResNet50,BertModel]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import converter  # noqa: E402
import ir  # noqa: E402
from converter import parity  # noqa: E402
from converter.backends import tflite  # noqa: E402
from converter.errors import InputError  # noqa: E402
from converter.runners import open_runner  # noqa: E402
from fixtures import zoo  # noqa: E402

KERAS_APPS = ("ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121")
TRANSFORMERS = ("BertModel", "GPT2Model", "ViTModel")
VOCAB = zoo.VOCAB
#: cosine similarity fp16 results must reach (as ``converter.convert`` checks them)
FP16_MIN_COSINE = 0.999
#: sizes given to symbols TFLite cannot keep dynamic (what ``--input`` would say)
SPECIALIZED_BATCH, SPECIALIZED_OTHER = 2, 5


@dataclasses.dataclass
class Source:
    """A live model, how to load it, and how to feed it."""

    name: str
    module: Any
    load_options: dict[str, Any]
    batch: int = 3
    int_range: tuple[int, int] = (0, 10)
    classifier: bool = False


# ---- the models ----------------------------------------------------------------------


def keras_source(name: str) -> Source:
    """A keras.applications model at 96x96 with random weights and batch-norm statistics."""
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(96, 96, 3), classifier_activation=None)
    zoo.randomize_batch_norm(model)
    return Source(name, model, {}, classifier=True)


def transformer_source(name: str) -> Source:
    """A small transformers model (random weights) and the options that export it with dynamic dims."""
    import torch

    torch.manual_seed(0)
    if name == "BertModel":
        ids = torch.randint(0, VOCAB, (2, 5), generator=torch.Generator().manual_seed(0))
        dims = {0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", max=64)}  # BERT needs seq <= 64
        options = {"inputs": {"input_ids": ids}, "dynamic_shapes": {"input_ids": dims}}
        return Source(name, zoo.bert(), options, int_range=(0, VOCAB))
    if name == "GPT2Model":
        return Source(name, zoo.gpt2(), {"inputs": ["input_ids:batch x seq:int64"]},
                      int_range=(0, VOCAB))
    return Source(name, zoo.vit(), {"inputs": ["pixel_values:batch x 3 x 32 x 32"]})


def sources(names: list[str]) -> list[Callable[[], Source]]:
    """Factories, so that one model at a time is alive."""
    return [(lambda n=n: keras_source(n)) if n in KERAS_APPS else (lambda n=n: transformer_source(n)) for n in names]


# ---- conversion and measurement ------------------------------------------------------


def save_tflite(model: ir.Model, path: Path, quantize: str | None) -> dict[str, Any]:
    """The back end's info; dims TFLite refuses to keep dynamic are sized as ``--input`` would."""
    try:
        return tflite.save(model, path, quantize=quantize)
    except InputError as e:
        if "dynamic" not in e.message:
            raise
    symbols = ir.symbols.symbolic_dims(model)
    sizes = {s: SPECIALIZED_BATCH if s == "batch" else SPECIALIZED_OTHER for s in symbols}
    return tflite.save(model, path, quantize=quantize, specialize=sizes)


def compare(source: Source, model: ir.Model, path: Path, quantize: str | None, seed: int = 0) -> dict[str, Any]:
    """Errors of the ``.tflite`` file against the live source on one random batch (``model``: the IR)."""
    signature = open_runner(path, "tflite").signature()
    feeds = parity.make_inputs(signature, {"batch": source.batch}, source.int_range, seed)
    expected = open_runner(source.module, None).run(feeds)
    report = converter.validate(source.module, path, inputs=feeds, model=model,
                                min_cosine=FP16_MIN_COSINE if quantize == "fp16" else None)
    scales = [float(np.max(np.abs(v))) for v in expected.values()]
    worst = max(o.max_abs_error / max(s, 1e-12) for o, s in zip(report.outputs, scales, strict=True))
    cosine = min(o.cosine_similarity for o in report.outputs if o.cosine_similarity is not None)
    top1 = report.outputs[0].top1_agreement if source.classifier else None
    return {"error/scale": worst, "cosine": cosine, "top1": top1, "passed": report.passed,
            "batch": next(iter(report.input_shapes.values()))[0]}


def op_count(path: Path) -> int:
    from ai_edge_litert.interpreter import Interpreter

    return len(Interpreter(model_path=str(path))._get_ops_details())


def bench_model(factory: Callable[[], Source], out: Path) -> list[dict[str, Any]]:
    """Both precisions of one model, as table rows (an error becomes a row too)."""
    source = factory()
    model = converter.load(source.module, **source.load_options)
    converter.optimize(model, 2)
    rows = []
    for quantize in (None, "fp16"):
        row: dict[str, Any] = {"model": source.name, "precision": quantize or "float32"}
        path = out / f"{source.name}_{row['precision']}.tflite"
        try:
            start = time.perf_counter()
            info = save_tflite(model, path, quantize)
            row["save_s"] = time.perf_counter() - start
            row["specialized"] = info.get("specialized", {})
            row.update(compare(source, model, path, quantize))
            row.update({"ops": op_count(path), "size_kib": path.stat().st_size / 1024})
        except Exception as e:  # a failing model is a row of the table, not the end of the run
            row["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['model']:<15} {row['precision']:<8} FAILED {row['error']}"
    top1 = "-" if row["top1"] is None else f"{row['top1']:.2f}"
    fixed = ",".join(f"{k}={v}" for k, v in row["specialized"].items()) or "none"
    return (f"{row['model']:<15} {row['precision']:<8} {'PASS' if row['passed'] else 'FAIL'}  "
            f"err/scale {row['error/scale']:.2e}  cosine {row['cosine']:.7f}  top1 {top1}  batch {row['batch']}  "
            f"ops {row['ops']}  {row['size_kib']:.0f} KiB  save {row['save_s']:.1f}s  specialized {fixed}")


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the rows."""
    lines = ["| model | precision | parity | max err / scale | cosine | top-1 | ops | size (KiB) | specialized |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['precision']} | error: {r['error']} | | | | | | |")
            continue
        top1 = "-" if r["top1"] is None else f"{r['top1']:.2f}"
        fixed = ", ".join(f"{k}={v}" for k, v in r["specialized"].items()) or "-"
        lines.append(f"| {r['model']} | {r['precision']} | {'pass' if r['passed'] else 'FAIL'} | "
                     f"{r['error/scale']:.1e} | {r['cosine']:.7f} | {top1} | {r['ops']} | {r['size_kib']:.0f} | {fixed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(KERAS_APPS + TRANSFORMERS), help="comma-separated model names")
    names = parser.parse_args().only.split(",")
    unknown = sorted(set(names) - set(KERAS_APPS + TRANSFORMERS))
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)}")
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tflite-zoo-") as tmp:
        for factory in sources(names):
            rows.extend(bench_model(factory, Path(tmp)))
    print()
    print(table(rows))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if any("error" in r or not r["passed"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
