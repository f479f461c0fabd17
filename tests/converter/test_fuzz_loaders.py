"""Fuzzed loaders: malformed files give one clear InputError (exit 2), never a crash or a hang.

Seeded mutations of the shipped fixtures (truncation, bit flips, byte runs
overwritten, chunks duplicated), bounded so the suite stays fast; `make fuzz`
runs a long campaign with the same cases (bench/fuzz_loaders.py).
"""

from __future__ import annotations

import pathlib
import random
import signal
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from fuzz_loaders import CASE_SECONDS, fuzz_one, mutate  # noqa: E402

ONNX = ROOT / "fixtures" / "models" / "onnx"


@pytest.fixture(autouse=True)
def _alarm():
    def timeout(signum, frame):
        raise TimeoutError("loader hung")

    old = signal.signal(signal.SIGALRM, timeout)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("fixture", ["cnn.onnx", "mlp.onnx", "control_flow.onnx", "attention.onnx", "external_data.onnx"])
def test_mutated_onnx_files_fail_cleanly(fixture, tmp_path):
    data = (ONNX / fixture).read_bytes()
    rng = random.Random(f"onnx-{fixture}")
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(60):
        case = tmp_path / f"case{i}.onnx"
        case.write_bytes(mutate(data, rng))
        if fixture == "external_data.onnx":
            (tmp_path / "external_data.onnx.data").write_bytes((ONNX / "external_data.onnx.data").read_bytes())
        signal.alarm(CASE_SECONDS)
        outcomes[fuzz_one(case, "onnx", tmp_path / f"out{i}.onnx")] += 1
        signal.alarm(0)
    assert outcomes["refused"] > 0  # the mutations do reach the error paths
    staging_left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert staging_left == []  # failed conversions leave no temporary output behind


def test_mutated_graphdef_fails_cleanly(tmp_path):
    pytest.importorskip("tensorflow")
    data = (ROOT / "fixtures" / "models" / "tf" / "frozen_cnn.pb").read_bytes()
    rng = random.Random("graphdef")
    for i in range(15):
        case = tmp_path / f"case{i}.pb"
        case.write_bytes(mutate(data, rng))
        signal.alarm(CASE_SECONDS * 3)
        fuzz_one(case, "graphdef", tmp_path / f"out{i}.onnx")
        signal.alarm(0)


def test_mutated_keras_archive_fails_cleanly(tmp_path):
    pytest.importorskip("keras")
    data = (ROOT / "fixtures" / "models" / "tf" / "cnn.keras").read_bytes()
    rng = random.Random("keras")
    for i in range(10):
        case = tmp_path / f"case{i}.keras"
        case.write_bytes(mutate(data, rng))
        signal.alarm(CASE_SECONDS * 3)
        fuzz_one(case, "keras", tmp_path / f"out{i}.onnx")
        signal.alarm(0)
