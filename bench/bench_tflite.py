"""TFLite target against the established converters: onnx2tf (ONNX) and litert-torch (PyTorch).

Each outside tool is installed into its own virtualenv under ``.bench-envs/<tool>``
from ``bench/envs/<tool>.txt`` (they pin other TensorFlow / torch / numpy
versions than crossgraph's ``.venv``), created with the same ``python3`` and pip,
and run in a subprocess. crossgraph runs in a subprocess of ``.venv`` too, so
every conversion time includes starting Python and importing the framework.
A tool whose environment cannot be built (no network, a failed install, the
time limit) is reported and skipped: crossgraph is then measured alone.

On the same fixture models, per tool: conversion wall time, TFLite op count,
TRANSPOSE op count, and LiteRT latency (1 thread, median of ``--runs`` invokes,
in ``.venv``'s ai-edge-litert, inputs resized to the same shapes).

crossgraph is measured three ways: as converted (symbolic dims stay dynamic,
so the file computes shapes at run time), with ``--nhwc-io``, and with
``--input`` giving every dim the benchmark's size (``crossgraph --input``):
a static file, which is what onnx2tf (``-ois``) and litert-torch (traced at the
example's shapes) write, so that row is the like-for-like comparison.
``--ops`` prints each file's op histogram.

Usage:
    .venv/bin/python bench/bench_tflite.py [--runs 50] [--env-timeout 900] [--json out.json] [--ops]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "fixtures" / "models"
ENVS = ROOT / ".bench-envs"
REQUIREMENTS = ROOT / "bench" / "envs"


@dataclasses.dataclass
class Case:
    """One model and the input shapes every tool converts and runs it at."""

    name: str
    path: pathlib.Path
    shapes: dict[str, tuple[list[int], str]]  # input -> (shape in the source's layout, dtype)
    crossgraph_options: dict = dataclasses.field(default_factory=dict)


ONNX_CASES = [
    Case("cnn.onnx", MODELS / "onnx" / "cnn.onnx", {"x": ([1, 3, 32, 32], "float32")}),
    Case("mlp.onnx", MODELS / "onnx" / "mlp.onnx", {"x": ([1, 32], "float32")}),
    Case("attention.onnx", MODELS / "onnx" / "attention.onnx", {"x": ([1, 8, 16], "float32")}),
]
TORCH_CASES = [
    Case("resnet_like.pt2", MODELS / "torch" / "resnet_like.pt2", {"x": ([1, 3, 32, 32], "float32")}),
    # TFLite cannot keep this model's dims dynamic (a 5-D Squeeze): crossgraph is given the sizes.
    Case("transformer.pt2", MODELS / "torch" / "transformer.pt2", {"x": ([1, 8, 16], "float32")},
         {"backend_specialize": {"batch": 1, "x_1": 8}}),
    Case("causal_lm.pt2", MODELS / "torch" / "causal_lm.pt2", {"input_ids": ([1, 8], "int64")}),
]

_CROSSGRAPH = """
import json, sys
import converter
converter.convert(sys.argv[1], sys.argv[2], check=False, **json.loads(sys.argv[3]))
"""

_LITERT_TORCH = """
import json, sys
import torch, litert_torch
shapes = json.loads(sys.argv[3])
program = torch.export.load(sys.argv[1])
args = tuple(torch.randn(s) if d.startswith("float") else torch.randint(0, 10, s, dtype=getattr(torch, d))
             for s, d in shapes.values())
litert_torch.convert(program.module(), args).export(sys.argv[2])
"""


def ensure_env(tool: str, timeout: float) -> pathlib.Path | None:
    """The python of ``.bench-envs/<tool>``, built from ``bench/envs/<tool>.txt`` if needed; None if it cannot be."""
    requirements = REQUIREMENTS / f"{tool}.txt"
    env = ENVS / tool
    python = env / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = env / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    print(f"[{tool}] building {env.relative_to(ROOT)} from {requirements.relative_to(ROOT)} (up to {timeout:.0f}s)...",
          flush=True)
    base = shutil.which("python3") or sys.executable
    try:
        if not python.exists():
            subprocess.run([base, "-m", "venv", str(env)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
                       check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"[{tool}] not installed: pip did not finish in {timeout:.0f}s; measuring without it")
        return None
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or e.stdout or "").strip().splitlines()[-3:] if isinstance(e.stderr, str) else []
        print(f"[{tool}] not installed ({' / '.join(tail) or e}); measuring without it")
        return None
    stamp.write_text(digest)
    return python


def _run(cmd: list[str], timeout: float = 900) -> tuple[float, str | None]:
    """Wall time of ``cmd`` and None, or the time and the end of its output when it fails."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"timed out after {timeout:.0f}s"
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "rror" in ln] or lines
        return seconds, " | ".join(errors[-2:])[-300:]
    return seconds, None


def convert_crossgraph(case: Case, out: pathlib.Path, variant: str = "") -> tuple[float, pathlib.Path | None, str | None]:
    """``variant``: "" (as converted), "nhwc" (``--nhwc-io``) or "static" (``--input`` at the case's shapes)."""
    dest = out / f"crossgraph_{variant}_{case.path.stem}.tflite"
    options = dict(case.crossgraph_options)
    if variant == "nhwc":
        options["backend_nhwc_io"] = True
    elif variant == "static":
        options.pop("backend_specialize", None)  # --input sizes every dim
        options["inputs"] = [f"{name}:{'x'.join(map(str, shape))}:{dtype}" for name, (shape, dtype) in case.shapes.items()]
    seconds, error = _run([str(ROOT / ".venv" / "bin" / "python"), "-c", _CROSSGRAPH, str(case.path), str(dest),
                           json.dumps(options)])
    return seconds, (dest if error is None else None), error


def convert_onnx2tf(python: pathlib.Path, case: Case, out: pathlib.Path) -> tuple[float, pathlib.Path | None, str | None]:
    folder = out / f"onnx2tf_{case.path.stem}"
    shapes = [f"{name}:{','.join(map(str, shape))}" for name, (shape, _) in case.shapes.items()]
    # onnx2tf rewrites its input file (shape-inferred): give it a copy, never the shipped fixture.
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / case.path.name
    shutil.copy(case.path, source)
    seconds, error = _run([str(python.parent / "onnx2tf"), "-i", str(source), "-o", str(folder), "-n",
                           "-ois", *shapes])
    found = sorted(folder.glob("*_float32.tflite")) if error is None else []
    return seconds, (found[0] if found else None), error or (None if found else "no *_float32.tflite written")


def convert_litert_torch(python: pathlib.Path, case: Case, out: pathlib.Path) -> tuple[float, pathlib.Path | None, str | None]:
    dest = out / f"litert_torch_{case.path.stem}.tflite"
    shapes = {name: (shape, dtype) for name, (shape, dtype) in case.shapes.items()}
    seconds, error = _run([str(python), "-c", _LITERT_TORCH, str(case.path), str(dest), json.dumps(shapes)])
    return seconds, (dest if error is None and dest.exists() else None), error


def measure(path: pathlib.Path, case: Case, runs: int) -> dict:
    """Op count, TRANSPOSE count and median single-thread latency of a ``.tflite`` file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    rng = np.random.default_rng(0)
    wanted = list(case.shapes.values())
    for i, detail in enumerate(interpreter.get_input_details()):
        shape = _shape_in_file(wanted[min(i, len(wanted) - 1)][0], detail["shape_signature"])
        interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        data = rng.standard_normal(detail["shape"]) if dtype.kind == "f" else rng.integers(0, 10, detail["shape"])
        interpreter.set_tensor(detail["index"], data.astype(dtype))
    for _ in range(3):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    histogram = ", ".join(f"{op} {n}" for op, n in collections.Counter(ops).most_common())
    return {"ops": len(ops), "transposes": ops.count("TRANSPOSE"), "latency_ms": 1000 * statistics.median(times),
            "size_kb": path.stat().st_size / 1024, "op_histogram": histogram}


def _shape_in_file(shape: list[int], signature: np.ndarray) -> list[int]:
    """The benchmark shape as the file lays it out (an NHWC input gets the permuted NCHW shape)."""
    sig = [int(d) for d in signature]
    if len(shape) == 4 and len(sig) == 4 and sig[1] not in (-1, shape[1]) and sig[3] in (-1, shape[1]):
        return [shape[0], shape[2], shape[3], shape[1]]
    return shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed invokes per model (median reported)")
    parser.add_argument("--env-timeout", type=float, default=900, help="seconds allowed to build each tool's env")
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--ops", action="store_true", help="print each file's op histogram")
    args = parser.parse_args()

    tools = {"onnx2tf": ensure_env("onnx2tf", args.env_timeout),
             "litert-torch": ensure_env("litert-torch", args.env_timeout)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tflite-") as tmp:
        out = pathlib.Path(tmp)
        for cases, tool in ((ONNX_CASES, "onnx2tf"), (TORCH_CASES, "litert-torch")):
            for case in cases:
                attempts = [("crossgraph", lambda c=case: convert_crossgraph(c, out)),
                            ("crossgraph --nhwc-io", lambda c=case: convert_crossgraph(c, out, "nhwc")),
                            ("crossgraph --input", lambda c=case: convert_crossgraph(c, out, "static"))]
                if tools[tool] is not None:
                    convert = convert_onnx2tf if tool == "onnx2tf" else convert_litert_torch
                    attempts.append((tool, lambda c=case, f=convert, py=tools[tool]: f(py, c, out)))
                for name, attempt in attempts:
                    seconds, path, error = attempt()
                    row = {"model": case.name, "tool": name, "convert_s": seconds, "error": error}
                    if path is not None:
                        try:
                            row.update(measure(path, case, args.runs))
                        except RuntimeError as e:  # converted, but LiteRT cannot run it
                            row["error"] = f"LiteRT: {' '.join(str(e).split())[:200]}"
                    rows.append(row)
                    print(_format(row), flush=True)
                    if args.ops and "op_histogram" in row:
                        print(f"    {row['op_histogram']}", flush=True)
    print()
    print(_table(rows))
    missing = [t for t, python in tools.items() if python is None]
    if missing:
        print(f"\nnot measured (could not be installed here): {', '.join(missing)}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def _format(row: dict) -> str:
    if "ops" not in row:
        return f"{row['model']:<16} {row['tool']:<22} FAILED after {row['convert_s']:.1f}s: {row['error']}"
    return (f"{row['model']:<16} {row['tool']:<22} convert {row['convert_s']:6.1f}s  ops {row['ops']:4d}  "
            f"TRANSPOSE {row['transposes']:3d}  latency {1000 * row['latency_ms']:8.1f} us  {row['size_kb']:8.1f} KiB")


def _table(rows: list[dict]) -> str:
    lines = ["| model | tool | convert (s) | ops | TRANSPOSE | latency 1 thread (us) | size (KiB) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "ops" in r:
            lines.append(f"| {r['model']} | {r['tool']} | {r['convert_s']:.1f} | {r['ops']} | {r['transposes']} | "
                         f"{1000 * r['latency_ms']:.1f} | {r['size_kb']:.0f} |")
        else:
            lines.append(f"| {r['model']} | {r['tool']} | failed ({r['convert_s']:.1f}s): {r['error']} | - | - | - | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
