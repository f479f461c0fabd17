"""Weights above 2 GB: every conversion path, its wall time and peak memory (`make bench-large`).

Builds a synthetic model with more than 2 GB of float32 weights in a few seconds
(an embedding table plus a wide MLP, written straight to ONNX external data with
``np.memmap``, never held in RAM by the builder), then for each path runs one
child process and records its wall time and peak resident memory (``VmHWM``) as a
multiple of the weight bytes (goal: at most 1.5x):

    onnx -> onnx          convert (external data out), then validate
    onnx -> torchscript   convert, then validate
    onnx -> savedmodel    convert, then validate (when that back end exists)
    torch -> onnx         convert an nn.Module, then validate
    torch.onnx.export     the same nn.Module with PyTorch's own exporter, for comparison
    tf2onnx               the same function as a ``tf.function`` over ``tf.Variable``s,
                          converted by ``tf2onnx.convert.from_function`` (``large_model``)

The nn.Module's parameters are the ONNX model's weights, memory-mapped
copy-on-write, so both sides compute the same function; the TensorFlow
variables are copies of them (a variable owns its memory), so that path's
figures include one copy of the weights before tf2onnx starts. Each child's baseline
(RSS after imports, before any model is touched) is reported too: the interpreter
with torch and onnxruntime loaded is a few hundred MB whatever the model.
Results are deleted after each path to bound disk use (about 2x the model).

Usage: python bench/large.py [--gib 2.2] [--dir DIR] [--paths onnx-onnx,torch-onnx,...] [--max-gib N]

A step whose resident memory passes the cap (default 6x the weights, at most 80% of
the memory available at start) is stopped and reported as such, not left to exhaust
a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM = 2048  # model width
VOCAB = 65536  # embedding rows: VOCAB x DIM float32 = 512 MiB
BATCH = 2


def layout(gib: float) -> dict[str, tuple[int, int]]:
    """Weight name -> shape: the embedding table, then MLP pairs [DIM, H] / [H, DIM] up to ``gib``."""
    shapes = {"embedding": (VOCAB, DIM)}
    hidden = 8192
    total = VOCAB * DIM * 4
    i = 0
    while i == 0 or total < gib * 2**30:
        shapes[f"up{i}"] = (DIM, hidden)
        shapes[f"down{i}"] = (hidden, DIM)
        total += 2 * DIM * hidden * 4
        i += 1
    return shapes


def weight_bytes(shapes: dict[str, tuple[int, int]]) -> int:
    return sum(a * b * 4 for a, b in shapes.values())


def build_onnx(path: pathlib.Path, gib: float) -> int:
    """Write ``path`` and ``path.data``: ids -> Gather(embedding) -> (MatMul, Relu, MatMul, Add) * n."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    shapes = layout(gib)
    data = path.with_name(path.name + ".data")
    rng = np.random.default_rng(0)
    initializers, offset = [], 0
    with open(data, "wb") as f:
        f.truncate(weight_bytes(shapes))
    for name, shape in shapes.items():
        n = shape[0] * shape[1]
        out = np.memmap(data, np.float32, "r+", offset, shape)
        for start in range(0, shape[0], 4096):  # bounded chunks: the builder never holds a whole tensor
            rows = out[start : start + 4096]
            rows[:] = rng.standard_normal(rows.shape, np.float32) * (1.0 / np.sqrt(shape[0]))
        out.flush()
        del out
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape), data_location=TensorProto.EXTERNAL)
        for k, v in {"location": data.name, "offset": str(offset), "length": str(n * 4)}.items():
            t.external_data.add(key=k, value=v)
        initializers.append(t)
        offset += n * 4
    nodes = [helper.make_node("Gather", ["embedding", "ids"], ["h0"])]
    layers = (len(shapes) - 1) // 2
    for i in range(layers):
        nodes += [
            helper.make_node("MatMul", [f"h{i}", f"up{i}"], [f"u{i}"]),
            helper.make_node("Relu", [f"u{i}"], [f"r{i}"]),
            helper.make_node("MatMul", [f"r{i}", f"down{i}"], [f"d{i}"]),
            helper.make_node("Add", [f"h{i}", f"d{i}"], [f"h{i + 1}"] if i < layers - 1 else ["y"]),
        ]
    graph = helper.make_graph(
        nodes, "large_mlp",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", DIM])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10  # what onnxruntime reads
    onnx.save(model, str(path))
    return weight_bytes(shapes)


def torch_module(onnx_path: pathlib.Path) -> object:
    """The same model as an ``nn.Module`` whose parameters map the ONNX external data (copy-on-write)."""
    import numpy as np
    import onnx
    import torch

    proto = onnx.load(str(onnx_path), load_external_data=False)
    data = onnx_path.with_name(onnx_path.name + ".data")
    weights = {}
    for t in proto.graph.initializer:
        entry = {e.key: e.value for e in t.external_data}
        array = np.memmap(data, np.float32, "c", int(entry["offset"]), tuple(t.dims))
        weights[t.name] = torch.nn.Parameter(torch.from_numpy(array), requires_grad=False)

    class LargeMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = weights["embedding"]
            self.layers = (len(weights) - 1) // 2
            for i in range(self.layers):
                setattr(self, f"up{i}", weights[f"up{i}"])
                setattr(self, f"down{i}", weights[f"down{i}"])

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            h = self.embedding[ids]
            for i in range(self.layers):
                h = h + torch.relu(h @ getattr(self, f"up{i}")) @ getattr(self, f"down{i}")
            return h

    return LargeMLP().eval()


def tf_function(onnx_path: pathlib.Path) -> object:
    """The same model as a ``tf.function`` over ``tf.Variable``s holding the ONNX model's weights."""
    import numpy as np
    import onnx
    import tensorflow as tf

    proto = onnx.load(str(onnx_path), load_external_data=False)
    data = onnx_path.with_name(onnx_path.name + ".data")
    weights = {}
    for t in proto.graph.initializer:
        entry = {e.key: e.value for e in t.external_data}
        weights[t.name] = tf.Variable(np.memmap(data, np.float32, "r", int(entry["offset"]), tuple(t.dims)),
                                      trainable=False, name=t.name)
    layers = (len(weights) - 1) // 2

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="ids")])
    def large_mlp(ids: tf.Tensor) -> tf.Tensor:
        h = tf.gather(weights["embedding"], ids)
        for i in range(layers):
            h = h + tf.matmul(tf.nn.relu(tf.matmul(h, weights[f"up{i}"])), weights[f"down{i}"])
        return tf.identity(h, name="y")

    large_mlp.variables_ = weights  # keeps them alive with the function
    return large_mlp


# ---- one path per child process ---------------------------------------------------


def _rss_mib(field: str) -> float:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(path_name: str, step: str, workdir: pathlib.Path) -> dict:
    """Run one step of one path here; returns seconds and memory figures."""
    import numpy as np
    import onnxruntime  # noqa: F401  (imported before the baseline, as the steps need it)
    import torch

    import converter

    if path_name == "tf2onnx":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        import tf2onnx

    src = workdir / "large.onnx"
    ids = np.array([3, 65000], np.int64)
    target = {"onnx-onnx": "out.onnx", "onnx-torchscript": "out.pt", "onnx-savedmodel": "out_savedmodel",
              "torch-onnx": "out.onnx", "torch.onnx.export": "torch_onnx.onnx", "tf2onnx": "tf2onnx.zip"}[path_name]
    dst = workdir / target
    baseline = _rss_mib("VmRSS")
    start = time.perf_counter()
    note = ""
    if step == "convert":
        if path_name == "torch.onnx.export":
            module = torch_module(src)
            torch.onnx.export(module, (torch.from_numpy(ids),), str(dst), dynamo=True, external_data=True,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        elif path_name == "tf2onnx":  # above 2 GB tf2onnx writes a zip: the model and its external data
            function = tf_function(src)
            tf2onnx.convert.from_function(function, input_signature=[tf.TensorSpec([None], tf.int64, name="ids")],
                                          opset=17, large_model=True, output_path=str(dst))
        else:
            source = torch_module(src) if path_name.startswith("torch") else src
            inputs = [converter.InputSpec("ids", ("batch",), "int64")] if path_name.startswith("torch") else None
            converter.convert(source, dst, inputs=inputs, check=False)
    else:
        source = torch_module(src) if path_name.startswith("torch") else src
        report = converter.validate(source, dst, inputs={"ids": ids})
        note = f"parity {'PASS' if report.passed else 'FAIL'}, max abs err {max(o.max_abs_error for o in report.outputs):.2g}"
    return {"seconds": time.perf_counter() - start, "peak_mib": _rss_mib("VmHWM"), "baseline_mib": baseline, "note": note}


def _run_child(path_name: str, step: str, workdir: pathlib.Path, max_mib: float) -> dict:
    """Run one step in a child process; stop it (and say so) once its resident memory passes ``max_mib``."""
    cmd = [sys.executable, __file__, "--child", path_name, step, str(workdir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    status, peak = pathlib.Path(f"/proc/{proc.pid}/status"), 0.0
    while proc.poll() is None:
        try:
            rss = next(int(line.split()[1]) / 1024 for line in status.read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            rss = 0.0
        peak = max(peak, rss)
        if rss > max_mib:
            proc.kill()
            proc.communicate()
            return {"error": f"stopped at {rss:.0f} MiB resident, over the {max_mib:.0f} MiB cap (--max-gib)"}
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:160]}"}
    return json.loads(lines[-1])


#: Other converters on the same model, for comparison (convert only).
_OTHER_TOOLS = ("torch.onnx.export", "tf2onnx")


def _available_mib() -> float:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _paths(selected: list[str] | None) -> list[str]:
    from converter import formats

    paths = ["onnx-onnx", "onnx-torchscript", "onnx-savedmodel", "torch-onnx", "torch.onnx.export", "tf2onnx"]
    if not formats.FORMATS["savedmodel"].can_write():
        paths.remove("onnx-savedmodel")
    return [p for p in paths if selected is None or p in selected]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.2, help="weights to build, in GiB (default 2.2)")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--paths", default=None, help="comma-separated subset of the paths")
    parser.add_argument("--max-gib", type=float, default=None,
                        help="stop a step whose resident memory passes this (default: 6x the weights, "
                             "at most 80%% of the memory available at start)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], pathlib.Path(args.child[2]))))
        return 0

    workdir = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="crossgraph-large-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"free disk in {workdir}: {shutil.disk_usage(workdir).free / 2**30:.1f} GiB")
    start = time.perf_counter()
    nbytes = build_onnx(workdir / "large.onnx", args.gib)
    print(f"built {nbytes / 2**30:.2f} GiB of float32 weights ({len(layout(args.gib))} tensors) in "
          f"{time.perf_counter() - start:.1f}s")
    gib = nbytes / 2**20
    max_mib = args.max_gib * 1024 if args.max_gib else min(6 * gib, 0.8 * _available_mib())
    print(f"{'path':20} {'step':9} {'wall s':>7} {'peak MiB':>9} {'peak/weights':>13} {'(peak-base)/w':>14}  note")
    worst = 0.0
    try:
        for path_name in _paths(args.paths.split(",") if args.paths else None):
            for step in ("convert",) if path_name in _OTHER_TOOLS else ("convert", "validate"):
                r = _run_child(path_name, step, workdir, max_mib)
                if "error" in r:
                    print(f"{path_name:20} {step:9} {r['error']}")
                    break
                ratio, net = r["peak_mib"] / gib, (r["peak_mib"] - r["baseline_mib"]) / gib
                worst = max(worst, ratio) if step == "convert" and path_name not in _OTHER_TOOLS else worst
                print(f"{path_name:20} {step:9} {r['seconds']:7.1f} {r['peak_mib']:9.0f} {ratio:12.2f}x {net:13.2f}x  {r['note']}")
            for out in workdir.iterdir():
                if out.name.startswith(("out", "torch_onnx", "tf2onnx")):
                    shutil.rmtree(out) if out.is_dir() else out.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"worst crossgraph convert peak: {worst:.2f}x the weight bytes (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
