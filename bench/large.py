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

The nn.Module's parameters are the ONNX model's weights, memory-mapped
copy-on-write, so both sides compute the same function. Each child's baseline
(RSS after imports, before any model is touched) is reported too: the interpreter
with torch and onnxruntime loaded is a few hundred MB whatever the model.
Results are deleted after each path to bound disk use (about 2x the model).

Usage: python bench/large.py [--gib 2.2] [--dir DIR] [--paths onnx-onnx,torch-onnx,...]
"""

from __future__ import annotations

import argparse
import json
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

    src = workdir / "large.onnx"
    ids = np.array([3, 65000], np.int64)
    target = {"onnx-onnx": "out.onnx", "onnx-torchscript": "out.pt", "onnx-savedmodel": "out_savedmodel",
              "torch-onnx": "out.onnx", "torch.onnx.export": "torch_onnx.onnx"}[path_name]
    dst = workdir / target
    baseline = _rss_mib("VmRSS")
    start = time.perf_counter()
    note = ""
    if step == "convert":
        if path_name == "torch.onnx.export":
            module = torch_module(src)
            torch.onnx.export(module, (torch.from_numpy(ids),), str(dst), dynamo=True, external_data=True,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        else:
            source = torch_module(src) if path_name.startswith("torch") else src
            inputs = [converter.InputSpec("ids", ("batch",), "int64")] if path_name.startswith("torch") else None
            converter.convert(source, dst, inputs=inputs, check=False)
    else:
        source = torch_module(src) if path_name.startswith("torch") else src
        report = converter.validate(source, dst, inputs={"ids": ids})
        note = f"parity {'PASS' if report.passed else 'FAIL'}, max abs err {max(o.max_abs_error for o in report.outputs):.2g}"
    return {"seconds": time.perf_counter() - start, "peak_mib": _rss_mib("VmHWM"), "baseline_mib": baseline, "note": note}


def _run_child(path_name: str, step: str, workdir: pathlib.Path) -> dict:
    cmd = [sys.executable, __file__, "--child", path_name, step, str(workdir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:160]}"}
    return json.loads(lines[-1])


def _paths(selected: list[str] | None) -> list[str]:
    from converter import formats

    paths = ["onnx-onnx", "onnx-torchscript", "onnx-savedmodel", "torch-onnx", "torch.onnx.export"]
    if not formats.FORMATS["savedmodel"].can_write():
        paths.remove("onnx-savedmodel")
    return [p for p in paths if selected is None or p in selected]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.2, help="weights to build, in GiB (default 2.2)")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--paths", default=None, help="comma-separated subset of the paths")
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
    print(f"{'path':20} {'step':9} {'wall s':>7} {'peak MiB':>9} {'peak/weights':>13} {'(peak-base)/w':>14}  note")
    worst = 0.0
    try:
        for path_name in _paths(args.paths.split(",") if args.paths else None):
            for step in ("convert", "validate") if path_name != "torch.onnx.export" else ("convert",):
                r = _run_child(path_name, step, workdir)
                if "error" in r:
                    print(f"{path_name:20} {step:9} {r['error']}")
                    break
                ratio, net = r["peak_mib"] / gib, (r["peak_mib"] - r["baseline_mib"]) / gib
                worst = max(worst, ratio) if step == "convert" and path_name != "torch.onnx.export" else worst
                print(f"{path_name:20} {step:9} {r['seconds']:7.1f} {r['peak_mib']:9.0f} {ratio:12.2f}x {net:13.2f}x  {r['note']}")
            for out in workdir.iterdir():
                if out.name.startswith(("out", "torch_onnx")):
                    shutil.rmtree(out) if out.is_dir() else out.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"worst crossgraph convert peak: {worst:.2f}x the weight bytes (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
