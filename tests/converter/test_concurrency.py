"""Concurrent conversions: one destination written by two writers ends whole; threads on different models agree.

Two writers (threads, then processes) convert two models of identical layout but
different weights into the same ``.onnx`` destination with external data, so a
mix (model file from one writer, ``.data`` from the other) would still load and
could only be told by its values. The commit's renames are slowed down to make
the race window wide. Afterwards the model and its data must be exactly one
writer's, loadable by onnxruntime. Then four threads convert four different
models at once and must produce what the same conversions produce one at a time.
"""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import converter
from converter import staging
from converter.backends import onnx as onnx_backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
ONNX = ROOT / "fixtures" / "models" / "onnx"


@pytest.fixture
def two_sources(tmp_path) -> tuple[pathlib.Path, pathlib.Path]:
    """``mlp.onnx`` and a copy whose weights are doubled: same layout, different bytes."""
    proto = onnx.load(str(ONNX / "mlp.onnx"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    onnx.save(proto, str(tmp_path / "a" / "mlp.onnx"))
    for t in proto.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 2, t.name))
    onnx.save(proto, str(tmp_path / "b" / "mlp.onnx"))
    return tmp_path / "a" / "mlp.onnx", tmp_path / "b" / "mlp.onnx"


def _weights(path: pathlib.Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def _assert_one_writer(result: pathlib.Path, sources: tuple[pathlib.Path, ...]) -> int:
    """The result's weights are exactly one source's; returns which one."""
    assert (result.parent / (result.name + ".data")).is_file()
    got = _weights(result)
    matches = [i for i, src in enumerate(sources)
               if all(np.array_equal(got[name], w) for name, w in _weights(src).items())]
    assert len(matches) == 1, "the model and its external data come from different writers"
    ort.InferenceSession(str(result), providers=["CPUExecutionProvider"])
    leftovers = [p.name for p in result.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    return matches[0]


def _slow_replace(monkeypatch) -> None:
    """Widen the window between the renames of one commit."""
    real = os.replace
    rng = random.Random(0)

    def replace(src, dst):
        time.sleep(rng.uniform(0, 0.1))  # commits overlap in every order
        real(src, dst)

    monkeypatch.setattr(staging.os, "replace", replace)


def _convert_after(barrier: threading.Barrier, src: pathlib.Path, out: pathlib.Path, errors: list) -> None:
    try:
        barrier.wait()
        converter.convert(src, out, optimize=0, check=False)
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def test_two_threads_writing_one_destination_leave_one_whole_result(two_sources, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_backend, "EXTERNAL_DATA_THRESHOLD", 256)
    _slow_replace(monkeypatch)
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    winners = set()
    for _ in range(8):
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=_convert_after, args=(barrier, s, out, errors)) for s in two_sources]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        winners.add(_assert_one_writer(out, two_sources))
    assert winners  # each round ended with one writer's complete result


_WRITER = """
import os, pathlib, random, sys, time
sys.path.insert(0, {root!r})
import converter
from converter import staging
from converter.backends import onnx as onnx_backend
onnx_backend.EXTERNAL_DATA_THRESHOLD = 256
real = os.replace
def replace(src, dst):
    time.sleep(random.uniform(0, 0.1))
    real(src, dst)
staging.os.replace = replace
sync = pathlib.Path({sync!r})
for r in range({rounds}):
    while not (sync / f"go{{r}}").exists():
        time.sleep(0.002)
    converter.convert({src!r}, {dst!r}, optimize=0, check=False)
    (sync / f"done{{r}}-{who}").touch()
"""


def test_two_processes_writing_one_destination_leave_one_whole_result(two_sources, tmp_path):
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    sync = tmp_path / "sync"
    sync.mkdir()
    rounds = 6
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER.format(root=str(ROOT), sync=str(sync), rounds=rounds, who=i,
                                                              src=str(s), dst=str(out))], stderr=subprocess.PIPE, text=True)
        for i, s in enumerate(two_sources)
    ]
    try:
        for r in range(rounds):
            (sync / f"go{r}").touch()
            deadline = time.monotonic() + 120
            while not all((sync / f"done{r}-{i}").exists() for i in range(2)):
                # A writer may already have finished its last round and exited (code 0): only a failure counts.
                assert all(p.poll() in (None, 0) for p in procs), procs[0].stderr.read() + procs[1].stderr.read()
                assert time.monotonic() < deadline, "writers hung"
                time.sleep(0.01)
            _assert_one_writer(out, two_sources)
    finally:
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err


JOBS = [
    ("cnn.onnx", "cnn.pt"),
    ("mlp.onnx", "mlp.onnx"),
    ("attention.onnx", "attention.onnx"),
    ("control_flow.onnx", "control_flow.pt"),
]


def _outputs(path: pathlib.Path, source: pathlib.Path) -> list[np.ndarray]:
    """The converted model's outputs on seeded inputs shaped from the source's signature."""
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in i.shape]
        if "bool" in i.type:
            feeds[i.name] = np.array(True) if not shape else rng.random(shape) > 0.5
        elif "int" in i.type:
            feeds[i.name] = rng.integers(0, 4, shape).astype(np.int64)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    if path.suffix == ".onnx":
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    import torch

    out = torch.jit.load(str(path))(*(torch.from_numpy(np.asarray(v)) for v in feeds.values()))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def test_four_threads_on_different_models_match_serial_conversions(tmp_path):
    pytest.importorskip("torch")
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    serial.mkdir()
    parallel.mkdir()
    for src, dst in JOBS:
        converter.convert(ONNX / src, serial / dst)
    errors: list[BaseException] = []
    results = {}

    def work(src: str, dst: str) -> None:
        try:
            results[dst] = converter.convert(ONNX / src, parallel / dst)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=job) for job in JOBS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for src, dst in JOBS:
        assert results[dst].parity.passed
        for a, b in zip(_outputs(parallel / dst, ONNX / src), _outputs(serial / dst, ONNX / src), strict=True):
            np.testing.assert_array_equal(a, b)
