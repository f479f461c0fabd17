"""The SavedModel back end on the onnx package's ``light_*.onnx`` zoo: latency against onnxruntime,
and the export's time and peak memory.

For every light model, with random weights as initializers (as shipped, every
weight is a ConstantOfShape fill listed among the graph inputs, which
onnxruntime recomputes on every run and would make the comparison unfair):
ONNX -> IR -> SavedModel (``converter.backends.savedmodel``), then
``tf.saved_model.load`` and its ``serving_default`` signature on a seeded
random batch-1 input on CPU, against an onnxruntime CPU session on the same
model and input, the two timed alternately
call by call so that both see the same machine load. Prints the median latency
of each, their ratio, the largest difference between their outputs and the
Transpose ops left in the graph (all, and those moving activations).

The export of the largest models (vgg19: most parameters, 144 M; densenet121:
most nodes) is timed in a fresh subprocess each, which reports its peak
resident memory (``ru_maxrss``) and the same just before the export (after
importing TensorFlow and building the model).

``--conformance`` also runs every ONNX node conformance case through the back
end (several minutes) and prints pass / fail-to-convert / wrong-result next to
onnxruntime's own pass count on the same cases.

    .venv/bin/python bench/bench_savedmodel.py [--rounds 30] [--conformance]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXPORT_MODELS = ["vgg19", "densenet121"]


def light_dir() -> pathlib.Path:
    import onnx

    return pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def light_models() -> list[str]:
    return sorted(p.stem.removeprefix("light_") for p in light_dir().glob("light_*.onnx"))


def zoo_model(name: str, weights: str = "random"):
    """A light zoo model as an ``ir.Model``: as shipped (every weight a ConstantOfShape fill, which
    onnxruntime recomputes on every run because those models list initializers as graph inputs), or
    with random weights as initializers (``tests/backends/test_savedmodel.with_random_weights``)."""
    import ir

    sys.path.insert(0, str(REPO / "tests" / "backends"))
    from test_savedmodel import with_random_weights

    model = ir.load(light_dir() / f"light_{name}.onnx")
    return with_random_weights(model) if weights == "random" else model


def inputs_for(model) -> dict:
    """A seeded random batch-1 input for every fed input of a zoo model."""
    import numpy as np
    from test_savedmodel import runner_inputs

    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in runner_inputs(model).items()}


def paired_median_ms(first, second, rounds: int) -> tuple[float, float]:
    """Median milliseconds of two callables timed alternately, so both see the same machine load."""
    first(), second()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def latency_row(name: str, root: pathlib.Path, rounds: int) -> dict:
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    import ir
    from converter.backends import savedmodel

    model = zoo_model(name)
    feeds = inputs_for(model)
    start = time.perf_counter()
    savedmodel.save(model, root / name)
    export_s = time.perf_counter() - start
    manifest = json.loads((root / name / "assets.extra" / "crossgraph.json").read_text())
    fn = tf.saved_model.load(str(root / name)).signatures["serving_default"]
    names = {e["name"]: e["signature_name"] for e in manifest["inputs"]}
    out_name = manifest["outputs"][0]["signature_name"]
    tf_feeds = {names[k]: tf.constant(v) for k, v in feeds.items()}
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    tf_ms, ort_ms = paired_median_ms(lambda: fn(**tf_feeds), lambda: session.run(None, feeds), rounds)
    diff = float(np.abs(fn(**tf_feeds)[out_name].numpy() - session.run(None, feeds)[0]).max())
    return {"model": name, "export_s": export_s, "savedmodel_ms": tf_ms, "onnxruntime_ms": ort_ms,
            "ratio": tf_ms / ort_ms, "max_abs_diff": diff, "transposes": manifest["transposes"],
            "activation_transposes": manifest["activation_transposes"]}


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``ru_maxrss`` (KiB on Linux).

    Linux carries ``ru_maxrss`` over ``exec`` from the forking parent, so the
    bench runs the export children first, while the parent is still small.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_child(name: str, out: str) -> None:
    """In a fresh process: import TensorFlow, build the model, note the memory, export it; print JSON."""
    import tensorflow  # noqa: F401

    from converter.backends import savedmodel

    model = zoo_model(name)
    baseline = peak_rss_mib()
    start = time.perf_counter()
    savedmodel.save(model, pathlib.Path(out))
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in pathlib.Path(out).rglob("*") if p.is_file())
    print(json.dumps({"model": name, "export_s": seconds, "peak_mib": peak_rss_mib(), "before_mib": baseline,
                      "nodes": len(list(model.graph)), "size_mib": size / 2**20}))


def export_row(name: str, root: pathlib.Path) -> dict:
    out = root / f"export_{name}"
    proc = subprocess.run([sys.executable, __file__, "--export-child", name, str(out)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def conformance_table() -> None:
    """Every node case through the back end, classified, with onnxruntime's passes as the ceiling."""
    sys.path.insert(0, str(REPO / "tests" / "kernels"))
    import _onnx_conformance
    import test_tf_conformance as tfc

    counts = {"pass": 0, "missing": 0, "convert": 0, "fail": 0}
    both = ort_pass = 0
    start = time.perf_counter()
    for name in tfc.NAMES:
        result = tfc.outcome("savedmodel", name)
        kind = result.split(":")[0]
        counts[kind] += 1
        ort_ok = _onnx_conformance.outcome("onnxruntime", name) == "pass"
        ort_pass += ort_ok
        both += ort_ok and kind == "pass"
    print(f"\nONNX node conformance through the SavedModel back end ({len(tfc.NAMES)} cases, "
          f"{time.perf_counter() - start:.0f} s)")
    print(f"  pass {counts['pass']} | fail to convert {counts['missing'] + counts['convert']} "
          f"(no kernel {counts['missing']}, export error {counts['convert']}) | wrong result or run error "
          f"{counts['fail']}")
    print(f"  onnxruntime passes {ort_pass} (the ceiling); of those, the SavedModel passes {both}")


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    print(" | ".join(title for _, title, _ in columns))
    for row in rows:
        print(" | ".join(format(row[key], fmt) for key, _, fmt in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--conformance", action="store_true", help="also run every node case (minutes)")
    parser.add_argument("--export-child", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(*args.export_child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        exports = [export_row(name, root) for name in EXPORT_MODELS]  # first: see peak_rss_mib
        rows = [latency_row(name, root, args.rounds) for name in light_models()]
        print("SavedModel (serving_default, batch 1, CPU) vs onnxruntime, random weights, median latency")
        print_table(rows, [("model", "model", "<14"), ("savedmodel_ms", "SavedModel ms", ">9.2f"),
                           ("onnxruntime_ms", "onnxruntime ms", ">9.2f"), ("ratio", "ratio", ">6.2f"),
                           ("max_abs_diff", "max |diff|", ">9.2e"), ("export_s", "export s", ">7.1f"),
                           ("transposes", "Transposes", ">5d"), ("activation_transposes", "on activations", ">5d")])
        ratios = [r["ratio"] for r in rows]
        print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}")
        print("\nSavedModel export (random weights) in a fresh process; peak RSS includes TensorFlow and the model")
        print_table(exports, [("model", "model", "<12"), ("nodes", "nodes", ">5d"), ("export_s", "export s", ">8.1f"),
                              ("peak_mib", "peak MiB", ">8.0f"), ("before_mib", "before export MiB", ">8.0f"),
                              ("size_mib", "directory MiB", ">8.1f")])
    if args.conformance:
        conformance_table()


if __name__ == "__main__":
    main()
