"""crossgraph's optimizer against onnxscript's (and onnxsim / onnxslim when installed).

For each model: node counts and onnxruntime latency (median of N single-thread
runs) of the unoptimized model, crossgraph ``-O1`` and ``-O2``
(``passes.optimize``), ``onnxscript.optimizer.optimize``, and onnxsim /
onnxslim if importable; ratios against the unoptimized model and against
onnxscript; and the max abs difference of each optimized model's output from
the unoptimized one's (same inputs, same runtime).

Latency is measured twice: with onnxruntime's own graph optimizations off
(``ORT_DISABLE_ALL``: what the graph optimizer alone buys, e.g. for runtimes
with no optimizer of their own) and on (``ORT_ENABLE_ALL``, the default).

Models, all with random weights, in one run:

- keras.applications ResNet50, MobileNetV2, EfficientNetB0, DenseNet121
  (``weights=None``), converted by tf2onnx through ``converter.load(model,
  format="tf")`` and not optimized (``-O0``);
- transformers BertModel, GPT2Model, ViTModel from small configs, exported by
  ``torch.onnx.export(..., dynamo=False)`` (``HF_HUB_OFFLINE=1``: no download);
- the onnx package's ``light_*.onnx`` models;
- a ResNet-like CNN and a transformer encoder written here, and the ONNX fixtures.

Each timed setting runs ``--runs`` times or for about ``--budget`` seconds,
whichever is fewer (at least 5). A summary table at the end gives, per model,
nodes and ORT-on latency for unoptimized / crossgraph -O2 / onnxsim / onnxslim.

    .venv/bin/python bench/bench_passes.py [--runs 100] [--only NAME ...] [--onnxscript]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ir  # noqa: E402
import passes  # noqa: E402

FIXTURES = REPO / "fixtures" / "models" / "onnx"
KERAS_APPS = ("ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121")


# ---- models -------------------------------------------------------------------------


def torch_models(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """A ResNet-like CNN and a transformer encoder, exported to ONNX (TorchScript exporter).

    Exported without the exporter's constant folding, as a model straight out of
    a front end is: BatchNorm, Identity and shape arithmetic are left to the optimizers.
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class ResNetLike(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2), Block(64, 64, 1))
            self.head = nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.layers(self.stem(x)).mean((2, 3)))

    class EncoderLayer(nn.Module):
        def __init__(self, d: int = 128, heads: int = 4) -> None:
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln1 = nn.LayerNorm(d)
            self.ln2 = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            b, s, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, s, d))
            return x + self.mlp(self.ln2(x))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(1000, 128)
            self.layers = nn.Sequential(*(EncoderLayer() for _ in range(4)))
            self.norm = nn.LayerNorm(128)

        def forward(self, tokens):
            return self.norm(self.layers(self.embed(tokens)))

    torch.manual_seed(0)
    cases = {
        "resnet_like": (ResNetLike(), torch.randn(1, 3, 96, 96), {0: "batch"}),
        "transformer": (Encoder(), torch.randint(0, 1000, (1, 64)), {0: "batch", 1: "seq"}),
    }
    paths = {}
    for name, (module, example, dims) in cases.items():
        path = directory / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": dims, "y": {0: "batch"}}, opset_version=18,
                              do_constant_folding=False)
        paths[name] = path
    return paths


def keras_models(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """keras.applications models (random weights) through crossgraph's TF front end, at -O0."""
    import keras

    import converter

    paths = {}
    for name in KERAS_APPS:
        model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
        path = directory / f"keras_{name}.onnx"
        ir.save(converter.load(model, format="tf"), path)
        paths[f"keras {name}"] = path
        keras.backend.clear_session()
    return paths


def hf_models(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """BERT, GPT-2 and ViT from small configs, exported by the TorchScript-based exporter."""
    import torch
    import transformers as tr

    small = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}
    tokens = torch.randint(0, 1000, (1, 32))
    cases = {
        "bert": (tr.BertModel(tr.BertConfig(vocab_size=1000, **small)), tokens, "input_ids"),
        "gpt2": (tr.GPT2Model(tr.GPT2Config(vocab_size=1000, n_embd=128, n_layer=2, n_head=4)), tokens, "input_ids"),
        "vit": (tr.ViTModel(tr.ViTConfig(image_size=64, patch_size=16, **small)), torch.randn(1, 3, 64, 64),
                "pixel_values"),
    }
    class LastHidden(torch.nn.Module):
        """Calls the model with one positional input (the exporter's kwargs clash with transformers 5)."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x).last_hidden_state

    paths = {}
    for name, (module, example, input_name) in cases.items():
        module = LastHidden(module)
        path = directory / f"hf_{name}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, input_names=[input_name],
                              output_names=["last_hidden_state"], opset_version=18, do_constant_folding=False)
        paths[f"hf {name}"] = path
    return paths


def light_models() -> dict[str, pathlib.Path]:
    """The onnx package's light_*.onnx models (weights generated in-graph)."""
    import onnx

    folder = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    return {p.stem: p for p in sorted(folder.glob("light_*.onnx"))}


def feeds_for(model: ir.Model, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs; symbolic dims get 1 (batch) or 64 (others)."""
    feeds = {}
    for value in model.graph.inputs:
        dims = [d if isinstance(d, int) else (1 if i == 0 else 64) for i, d in enumerate(value.shape)]
        dtype = value.dtype.numpy()
        if np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.integers(0, 10, size=dims).astype(dtype)
        else:
            feeds[value.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


# ---- optimizers -----------------------------------------------------------------------


def crossgraph(level: int) -> Callable[[ir.Model], ir.Model]:
    def run(model: ir.Model) -> ir.Model:
        passes.optimize(model, level)
        return model

    return run


def onnxscript_optimizer(model: ir.Model) -> ir.Model:
    import onnxscript.optimizer

    onnxscript.optimizer.optimize(model)
    return model


def optimizers(with_onnxscript: bool = False) -> dict[str, Callable[[ir.Model], ir.Model]]:
    found: dict[str, Callable[[ir.Model], ir.Model]] = {"crossgraph -O2": crossgraph(2)}
    if with_onnxscript:
        found["onnxscript"] = onnxscript_optimizer
    if importlib.util.find_spec("onnxsim"):
        import onnxsim

        found["onnxsim"] = lambda m: ir.from_proto(onnxsim.simplify(ir.to_proto(m))[0])
    if importlib.util.find_spec("onnxslim"):
        import onnxslim

        found["onnxslim"] = lambda m: ir.from_proto(onnxslim.slim(ir.to_proto(m)))
    return found


# ---- measuring ------------------------------------------------------------------------


def session(proto_bytes: bytes, ort_optimize: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if ort_optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(proto_bytes, options, providers=["CPUExecutionProvider"])


def median_ms(sess, feeds, runs: int, budget: float) -> float:
    """Median of up to ``runs`` timed runs, fewer when they would exceed ``budget`` seconds."""
    sess.run(None, feeds)
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < runs and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(path: pathlib.Path, runs: int, budget: float, with_onnxscript: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    base = ir.load(path)
    feeds = feeds_for(base, rng)
    variants = {"unoptimized": lambda m: m, **optimizers(with_onnxscript)}
    rows, reference = [], {}
    for name, optimize in variants.items():
        start = time.perf_counter()
        try:
            model = optimize(ir.load(path))
        except Exception as e:  # noqa: BLE001  (a tool failing on a model is a result, not a crash)
            print(f"  {name} failed: {type(e).__name__}: {str(e)[:120]}")
            continue
        seconds = time.perf_counter() - start
        data = ir.to_proto(model).SerializeToString()
        row = {"optimizer": name, "nodes": passes.count_nodes(model), "seconds": seconds}
        for ort_optimize in (False, True):
            sess = session(data, ort_optimize)
            # Models that list initializers as graph inputs lose them once optimized: feed what remains.
            feeds_now = {i.name: feeds[i.name] for i in sess.get_inputs() if i.name in feeds}
            outputs = sess.run(None, feeds_now)
            key = "ort_on" if ort_optimize else "ort_off"
            reference.setdefault(key, outputs)
            row[key] = median_ms(sess, feeds_now, runs, budget)
            row[f"diff_{key}"] = max(float(np.max(np.abs(a - b))) for a, b in zip(reference[key], outputs, strict=True))
        rows.append(row)
    return rows


def print_table(model_name: str, rows: list[dict]) -> None:
    base = rows[0]
    print(f"\n{model_name}")
    print(f"  {'optimizer':<15}{'nodes':>6}{'vs unopt':>9}{'opt s':>7}{'ORT off ms':>11}{'vs unopt':>9}"
          f"{'ORT on ms':>10}{'vs unopt':>9}{'max|diff| off':>14}{'on':>9}")
    for r in rows:
        print(
            f"  {r['optimizer']:<15}{r['nodes']:>6}{r['nodes'] / base['nodes']:>9.2f}{r['seconds']:>7.2f}"
            f"{r['ort_off']:>11.3f}{r['ort_off'] / base['ort_off']:>9.2f}"
            f"{r['ort_on']:>10.3f}{r['ort_on'] / base['ort_on']:>9.2f}"
            f"{r['diff_ort_off']:>14.2e}{r['diff_ort_on']:>9.2e}", flush=True
        )


SUMMARY_TOOLS = ("unoptimized", "crossgraph -O2", "onnxsim", "onnxslim")


def print_summary(results: dict[str, list[dict]]) -> None:
    """One line per model: nodes and ORT-on latency per tool; '!' where crossgraph loses."""
    print("\nsummary (nodes | ORT on ms, 1 thread, batch 1; '!' marks crossgraph -O2 behind a tool)")
    print(f"{'model':<22}" + "".join(f"{t:>16}" for t in SUMMARY_TOOLS) + f"{'cg max|diff|':>14}")
    for name, rows in results.items():
        by = {r["optimizer"]: r for r in rows}
        ours = by.get("crossgraph -O2")
        if ours is None:
            print(f"{name:<22} crossgraph -O2 failed")
            continue
        cells = []
        for tool in SUMMARY_TOOLS:
            r = by.get(tool)
            if r is None:
                cells.append(f"{'-':>16}")
                continue
            behind = tool in ("onnxsim", "onnxslim") and (
                ours["nodes"] > r["nodes"] or ours["ort_on"] > 1.05 * r["ort_on"]
            )
            cells.append(f"{r['nodes']:>6} |{r['ort_on']:>7.2f}{'!' if behind else ' '}")
        print(f"{name:<22}" + "".join(cells) + f"{ours['diff_ort_on']:>14.1e}")


def collect_models(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    models: dict[str, pathlib.Path] = {}
    for source in (keras_models, hf_models, torch_models):
        try:
            models.update(source(directory))
        except ImportError as e:
            print(f"note: {source.__name__} skipped ({e})")
    models.update(light_models())
    fixtures = ("cnn", "attention", "mlp")
    models.update({f"fixture {p.stem}": p for p in sorted(FIXTURES.glob("*.onnx")) if p.stem in fixtures})
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="most timed runs per model and setting (median)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of timed runs per model and setting")
    parser.add_argument("--only", nargs="*", help="run only models whose name contains one of these")
    parser.add_argument("--onnxscript", action="store_true", help="also compare onnxscript's optimizer")
    args = parser.parse_args()
    for tool in ("onnxsim", "onnxslim"):
        if not importlib.util.find_spec(tool):
            print(f"note: {tool} is not installed; skipped (pip install {tool} to compare)")
    print("nodes: excluding Constant; ratios < 1 mean fewer nodes / faster; "
          "ORT off/on: onnxruntime graph optimizations disabled/enabled, 1 thread")
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in collect_models(pathlib.Path(tmp)).items():
            if args.only and not any(key in name for key in args.only):
                continue
            results[name] = measure(path, args.runs, args.budget, args.onnxscript)
            print_table(name, results[name])
    print_summary(results)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
