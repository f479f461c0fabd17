"""Model-zoo benchmark: crossgraph against the established converters and runtimes.

(a) keras.applications (random weights, 96x96): conversion time of crossgraph's
    TensorFlow front end (``converter.load``: tf2onnx, repairs, opset upgrade,
    dim naming, provenance, verify) vs ``tf2onnx.convert.from_function`` alone
    on the same ``tf.function``.
(b) transformers (small BERT, GPT-2, ViT, random weights) and the ResNet-like
    fixture: crossgraph's PyTorch front end (``converter.load`` then
    ``converter.optimize`` -O2) vs ``torch.onnx.export(..., dynamo=True)``
    (which optimizes too): wall time and ONNX node counts.
(c) the onnx package's ``light_*`` models converted to TorchScript: latency of
    the emitted module (``torch.jit.load``) vs onnxruntime on the same ONNX,
    batch 1, CPU, one thread each, median of ``--runs``.

Times are one cold run each for conversions (they take seconds; the first
model of a family also pays the framework's warm-up, so both tools get a
warm-up model first) and medians for latency. Run from the repository root:
``python bench/bench_zoo.py [--runs 10] [--only a,b,c]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
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

KERAS_APPS = ("ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121")
LIGHT = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
         "squeezenet", "vgg19", "zfnet512")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of ``fn`` took, and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def count_nodes(proto_or_model: Any) -> int:
    """Nodes of an ONNX ModelProto or IR model, subgraphs included, Constant nodes not."""
    model = proto_or_model if isinstance(proto_or_model, ir.Model) else ir.from_proto(proto_or_model)
    return sum(1 for n in ir.traversal.RecursiveGraphIterator(model.graph) if n.op_type != "Constant")


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a fixed-width table."""
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


# ---- (a) keras.applications: crossgraph vs tf2onnx ---------------------------------


def keras_app(name: str) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    return getattr(keras.applications, name)(weights=None, input_shape=(96, 96, 3), classifier_activation=None)


def tf2onnx_alone(model: Any) -> Any:
    """``tf2onnx.convert.from_function`` on the model's call, with a dynamic batch."""
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="input")]
    function = tf.function(lambda x: model(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=18)
    return proto


def bench_keras() -> None:
    timed(lambda: converter.load(keras_app("MobileNetV2")))  # warm-up: TF, grappler, tf2onnx imports
    timed(lambda: tf2onnx_alone(keras_app("MobileNetV2")))
    rows = []
    for name in KERAS_APPS:
        model = keras_app(name)
        t_tf2onnx, proto = timed(lambda m=model: tf2onnx_alone(m))
        try:
            t_ours, ours = timed(lambda m=model: converter.load(m))
            ours_nodes = count_nodes(ours)
        except converter.CrossgraphError as e:
            t_ours, ours_nodes = float("nan"), f"failed: {type(e).__name__}"
        rows.append([name, t_ours, t_tf2onnx, t_ours / t_tf2onnx, ours_nodes, len(proto.graph.node)])
    table("(a) keras.applications -> ONNX: conversion seconds (one run each, after a warm-up model)",
          ["model", "crossgraph s", "tf2onnx s", "ratio", "crossgraph nodes", "tf2onnx nodes"], rows)


# ---- (b) transformers + ResNet-like: crossgraph vs torch.onnx dynamo ---------------


def torch_models() -> dict[str, tuple[Any, dict[str, Any], dict[str, Any]]]:
    """name -> (module, example kwargs, dynamic_shapes): the same export problem for both tools."""
    import torch

    from fixtures import zoo
    from fixtures.build_torch_fixtures import resnet_like

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=64)
    ids = {"input_ids": torch.randint(0, zoo.VOCAB, (2, 5), generator=gen)}
    ids_dims = {"input_ids": {0: batch, 1: seq}}
    return {
        "BertModel": (zoo.bert(), ids, ids_dims),
        "GPT2Model": (zoo.gpt2(), ids, ids_dims),
        "ViTModel": (zoo.vit(), {"pixel_values": torch.randn(2, 3, 32, 32, generator=gen)}, {"pixel_values": {0: batch}}),
        "resnet_like": (resnet_like().eval(), {"x": torch.randn(2, 3, 32, 32, generator=gen)}, {"x": {0: batch}}),
    }


def crossgraph_torch(module: Any, kwargs: dict[str, Any], dynamic: dict[str, Any]) -> tuple[int, int]:
    """Load then optimize -O2 (what ``convert`` does before writing); node counts before/after."""
    model = converter.load(module, inputs=kwargs, dynamic_shapes=dynamic)
    before = count_nodes(model)
    converter.optimize(model, 2)
    ir.to_proto(model)
    return before, count_nodes(model)


def torch_onnx_dynamo(module: Any, kwargs: dict[str, Any], dynamic: dict[str, Any]) -> int:
    import torch

    program = torch.onnx.export(module, (), kwargs=kwargs, dynamo=True, dynamic_shapes=dynamic, verbose=False)
    return count_nodes(program.model_proto)


def bench_torch() -> None:
    models = torch_models()
    warm = models["resnet_like"]
    timed(lambda: crossgraph_torch(*warm))  # warm-up: dynamo, decomposition tables, onnxscript
    timed(lambda: torch_onnx_dynamo(*warm))
    rows = []
    for name, (module, kwargs, dynamic) in models.items():
        t_ours, (before, after) = timed(lambda m=module, k=kwargs, d=dynamic: crossgraph_torch(m, k, d))
        t_torch, theirs = timed(lambda m=module, k=kwargs, d=dynamic: torch_onnx_dynamo(m, k, d))
        rows.append([name, t_ours, t_torch, t_ours / t_torch, f"{before} -> {after}", theirs])
    table("(b) PyTorch -> ONNX: crossgraph (load + -O2) vs torch.onnx.export(dynamo=True), one run each",
          ["model", "crossgraph s", "torch.onnx s", "ratio", "crossgraph nodes", "torch.onnx nodes"], rows)


# ---- (c) light zoo: emitted TorchScript vs onnxruntime latency ---------------------


def light_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def median_latency(fn: Callable[[], Any], runs: int) -> float:
    for _ in range(3):  # warm-up (TorchScript's profiling executor optimizes on the first calls)
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_light(runs: int) -> None:
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in LIGHT:
            source = light_dir() / f"light_{name}.onnx"
            destination = Path(tmp) / f"{name}.pt"
            converter.convert(source, destination, check=False)
            session = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).random([1, 3, 224, 224], dtype=np.float32)
            feed = {session.get_inputs()[0].name: x}
            module = torch.jit.load(str(destination)).eval()
            tx = torch.from_numpy(x)

            def run_torch(m: Any = module, t: Any = tx) -> Any:
                with torch.no_grad():
                    return m(t)

            t_ts = median_latency(run_torch, runs)
            t_ort = median_latency(lambda s=session, f=feed: s.run(None, f), runs)
            rows.append([name, t_ts * 1e3, t_ort * 1e3, t_ts / t_ort])
    table(f"(c) light zoo, batch 1, CPU, 1 thread: median of {runs} runs, milliseconds",
          ["model", "TorchScript ms", "onnxruntime ms", "ratio"], rows)
    ratios = [r[3] for r in rows]
    print(f"  geometric mean ratio TorchScript / onnxruntime: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="latency runs per model (median)")
    parser.add_argument("--only", default="a,b,c", help="sections to run, e.g. a,c")
    opts = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # tf2onnx and torch.onnx log per op
    sections = set(opts.only.split(","))
    start = time.perf_counter()
    if "a" in sections:
        bench_keras()
    if "b" in sections:
        bench_torch()
    if "c" in sections:
        bench_light(opts.runs)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
