"""Fuzz campaign for crossgraph's loaders (`make fuzz`; the test suite runs a bounded slice).

Each case mutates a fixture file (truncation, bit flips, overwritten runs,
duplicated chunks) and converts it; the only acceptable outcomes are a clean
load or a CrossgraphError (exit code 2). Anything else (another exception type,
a hang past the per-case limit) is a crash and is reported with its seed.

Usage: python bench/fuzz_loaders.py [CASES_PER_FIXTURE]   (default 500)
"""

from __future__ import annotations

import pathlib
import random
import shutil
import signal
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASE_SECONDS = 20


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded mutation of ``data``."""
    buf = bytearray(data)
    kind = rng.choice(["truncate", "flip", "flip", "overwrite", "duplicate", "zero"])
    if not buf:
        return bytes(buf)
    if kind == "truncate":
        return bytes(buf[: rng.randrange(len(buf))])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "overwrite":
        i = rng.randrange(len(buf))
        n = rng.randint(1, 64)
        buf[i : i + n] = bytes(rng.randrange(256) for _ in range(n))
    elif kind == "duplicate":
        i = rng.randrange(len(buf))
        n = rng.randint(1, 256)
        buf[i:i] = buf[i : i + n]
    else:
        i = rng.randrange(len(buf))
        buf[i : i + rng.randint(1, 32)] = b"\0" * min(32, len(buf) - i)
    return bytes(buf)


def fuzz_one(case: pathlib.Path, fmt: str, destination: pathlib.Path) -> str:
    """Convert ``case``; returns "loaded" or "refused", raises on anything else (a crash)."""
    import converter
    from converter.errors import CrossgraphError

    try:
        converter.convert(case, destination, source_format=fmt, optimize=1, check=False)
    except CrossgraphError:
        if destination.exists():
            raise AssertionError(f"{case}: failed but left {destination} behind") from None
        return "refused"
    return "loaded"


def main() -> int:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    fixtures = [(p, "onnx") for p in sorted((ROOT / "fixtures/models/onnx").glob("*.onnx"))]
    fixtures += [(p, "keras") for p in sorted((ROOT / "fixtures/models/tf").glob("*.keras"))]
    fixtures += [(p, "graphdef") for p in sorted((ROOT / "fixtures/models/tf").glob("*.pb"))]

    def timeout(signum, frame):
        raise TimeoutError("hang")

    signal.signal(signal.SIGALRM, timeout)
    crashes = 0
    print(f"{'fixture':32} {'cases':>6} {'loaded':>7} {'refused':>8} {'crashes':>8} {'slowest s':>10}")
    for path, fmt in fixtures:
        rng = random.Random(f"{path.name}")
        counts = {"loaded": 0, "refused": 0, "crash": 0}
        slowest = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = pathlib.Path(tmp)
            for extra in path.parent.glob(path.name + ".data"):
                shutil.copy(extra, tmpdir / extra.name)
            data = path.read_bytes()
            for i in range(cases):
                case = tmpdir / path.name
                case.write_bytes(mutate(data, rng))
                start = time.perf_counter()
                signal.alarm(CASE_SECONDS)
                try:
                    counts[fuzz_one(case, fmt, tmpdir / f"out{i}.onnx")] += 1
                except Exception as e:  # a crash: report and go on
                    counts["crash"] += 1
                    print(f"  CRASH {path.name} case {i}: {type(e).__name__}: {str(e)[:200]}")
                finally:
                    signal.alarm(0)
                slowest = max(slowest, time.perf_counter() - start)
        crashes += counts["crash"]
        print(f"{path.name:32} {cases:6d} {counts['loaded']:7d} {counts['refused']:8d} {counts['crash']:8d} {slowest:10.2f}")
    print(f"fuzz: {crashes} crash(es)")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
