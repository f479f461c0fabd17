"""ATen coverage of the PyTorch front end, measured against torch's own OpInfo database.

For every OpInfo in ``torch.testing._internal.common_methods_invocations.op_db``
that supports float32 on CPU, the first ``--samples`` sample inputs are each

1. wrapped in a tiny ``nn.Module`` (:class:`SampleModule`): the sample's tensors,
   wherever they sit in ``(input, args, kwargs)``, are ``forward``'s inputs; every
   other argument is closed over;
2. run eagerly twice (a sample whose two runs differ is random: left out);
3. ``torch.export``-ed; a sample torch cannot export (or decompose to core ATen)
   is counted as *not exportable*: torch's limit, not crossgraph's;
4. converted with ``converter.frontends.torch.load`` (decomposed to core ATen and
   translated as the front end always does);
5. run in onnxruntime and compared with the eager outputs: float at rtol 1e-4,
   atol 1e-5 with NaN equal to NaN, integers and bools exactly, dtypes and shapes
   exactly.

The report gives, per OpInfo op, samples tried / exported / converted / matching,
then the untranslated ATen ops (from ``UnsupportedOpsError.ops``) by the number of
samples that need them, and the ops with wrong results or errors. Run from the
repository root::

    python bench/opinfo_coverage.py [--samples 2] [--budget 600] [--ops add,mul] [--json out.json]

With 2 samples per op the whole database takes about 5 min of CPU (4-11 min of
wall time on a shared 2-core machine); ops not reached within ``--budget`` are
counted as left out.

``tests/frontends/test_torch_opinfo.py`` runs a bounded selection through the
same harness (:func:`check_sample`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import io
import itertools
import json
import logging
import signal
import sys
import time
import types
import unittest
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils import _pytree as pytree  # noqa: E402

import ir  # noqa: E402
from converter.errors import InputError, UnsupportedOpsError  # noqa: E402
from converter.frontends.torch import load  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
_COMPARABLE = {  # dtypes with a numpy counterpart
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32,
    torch.uint64, torch.float16, torch.float32, torch.float64, torch.complex64, torch.complex128,
}
SAMPLE_SECONDS = 30  # one sample taking longer is recorded as an error

#: How a sample ended, from worst (ours) to best; the first two are not crossgraph's doing.
STATUSES = (
    "random",  # two eager runs differ: not comparable
    "skipped",  # the harness cannot compare this sample's outputs (complex32, sparse)
    "not_exportable",  # torch.export or the core-ATen decomposition failed
    "no_tensor_output",  # nothing to compare
    "unsupported",  # an ATen op has no translation
    "convert_error",  # a translation raised, or the model failed ir.verify
    "runtime_error",  # onnxruntime refused or failed the model
    "mismatch",  # ran, but the outputs differ
    "match",
)


# ---- the OpInfo database ---------------------------------------------------------


def op_db() -> list[Any]:
    """torch's OpInfo list.

    ``common_methods_invocations`` imports ``expecttest`` (a torch test dependency)
    only for its ``TestCase`` base class; where that package is absent a stand-in
    module with ``unittest.TestCase`` is installed first.
    """
    try:
        import expecttest  # noqa: F401
    except ImportError:
        shim = types.ModuleType("expecttest")
        shim.TestCase = unittest.TestCase
        shim.ACCEPT = False
        sys.modules["expecttest"] = shim
    from torch.testing._internal.common_methods_invocations import op_db as database

    return database


def op_name(opinfo: Any) -> str:
    """``name`` or ``name.variant`` (OpInfo's ``variant_test_name``)."""
    return f"{opinfo.name}.{opinfo.variant_test_name}" if opinfo.variant_test_name else opinfo.name


def float32_samples(opinfo: Any, limit: int) -> list[Any]:
    """The first ``limit`` CPU float32 sample inputs of ``opinfo`` (none if it lacks float32)."""
    if torch.float32 not in opinfo.supported_dtypes("cpu"):
        return []
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(itertools.islice(opinfo.sample_inputs("cpu", torch.float32), limit))


# ---- one sample ------------------------------------------------------------------


class SampleModule(torch.nn.Module):
    """Calls ``op(input, *args, **kwargs)`` with the sample's tensors as ``forward``'s inputs.

    Returns the tensor leaves of the result as a tuple (non-tensor leaves are dropped).
    """

    def __init__(self, op: Any, sample: Any) -> None:
        super().__init__()
        self.op = op
        self.leaves, self.spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
        self.slots = [i for i, leaf in enumerate(self.leaves) if isinstance(leaf, torch.Tensor)]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The example inputs (fresh, contiguous copies)."""
        return tuple(self.leaves[i].detach().clone().contiguous() for i in self.slots)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves = list(self.leaves)
        for slot, tensor in zip(self.slots, tensors, strict=True):
            leaves[slot] = tensor
        first, args, kwargs = pytree.tree_unflatten(leaves, self.spec)
        result = self.op(first, *args, **kwargs)
        return tuple(leaf for leaf in pytree.tree_leaves(result) if isinstance(leaf, torch.Tensor))


@dataclasses.dataclass
class SampleResult:
    """How one sample ended; ``missing`` lists untranslated ATen ops, ``detail`` the error."""

    status: str
    missing: list[str] = dataclasses.field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`_Timeout` in the main thread after ``seconds`` (no-op off the main thread)."""

    def expire(signum: int, frame: Any) -> None:
        raise _Timeout(f"over {seconds} s")

    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except ValueError:  # not the main thread
        yield
        return
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_sample(opinfo: Any, sample: Any, seconds: int = SAMPLE_SECONDS) -> SampleResult:
    """Export, convert and run one sample; compare with eager torch."""
    start = time.perf_counter()
    try:
        with _time_limit(seconds), _quiet():
            result = _check(SampleModule(opinfo.op, sample))
    except _Timeout as e:
        result = SampleResult("convert_error", detail=f"timeout: {e}")
    result.seconds = time.perf_counter() - start
    return result


def _check(module: SampleModule) -> SampleResult:
    try:
        with torch.no_grad():
            expected = module(*module.tensors())
            again = module(*module.tensors())
    except Exception as e:
        return SampleResult("not_exportable", detail=f"eager: {_line(e)}")
    if not expected:
        return SampleResult("no_tensor_output")
    if any(t.dtype not in _COMPARABLE or t.layout != torch.strided for t in expected):
        return SampleResult("skipped", detail=f"outputs {[(t.dtype, t.layout) for t in expected]}")
    try:
        if _differs(expected, again):
            return SampleResult("random")
    except Exception as e:
        return SampleResult("skipped", detail=f"eager outputs not comparable: {_line(e)}")
    try:
        ep = torch.export.export(module, module.tensors(), strict=False)
    except Exception as e:
        return SampleResult("not_exportable", detail=f"export: {_line(e)}")
    try:
        model = load(ep, format="torch")
    except UnsupportedOpsError as e:
        return SampleResult("unsupported", missing=sorted({op for op, _ in e.ops}), detail=str(e))
    except InputError as e:
        return SampleResult("not_exportable", detail=_line(e))
    except Exception as e:
        return SampleResult("convert_error", detail=_line(e))
    try:
        actual = run_onnxruntime(model, module.tensors())
    except Exception as e:
        return SampleResult("runtime_error", detail=_line(e))
    problem = compare(expected, actual)
    return SampleResult("mismatch", detail=problem) if problem else SampleResult("match")


def run_onnxruntime(model: ir.Model, tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """The model's outputs for ``tensors`` (its inputs, in order) on onnxruntime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {v.name: t.numpy() for v, t in zip(model.graph.inputs, tensors, strict=True)}
    return session.run(None, feeds)


def compare(expected: tuple[torch.Tensor, ...], actual: list[np.ndarray]) -> str:
    """'' if every output agrees, else what differs first."""
    if len(expected) != len(actual):
        return f"{len(actual)} outputs, expected {len(expected)}"
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        want = want.detach().resolve_conj().numpy()
        got = np.asarray(got)
        if got.dtype != want.dtype:
            return f"output {i}: dtype {got.dtype}, expected {want.dtype}"
        if got.shape != want.shape:
            return f"output {i}: shape {got.shape}, expected {want.shape}"
        if not _close(want, got):
            diff = np.abs(want.astype(np.float64) - got.astype(np.float64))
            return f"output {i}: max abs error {np.nanmax(diff) if diff.size else 0:.3g}"
    return ""


def _close(want: np.ndarray, got: np.ndarray) -> bool:
    if np.issubdtype(want.dtype, np.floating) or np.issubdtype(want.dtype, np.complexfloating):
        return bool(np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True))
    return bool(np.array_equal(got, want))


def _differs(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    """Whether two eager runs differ (NaN equal to NaN)."""
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape or x.dtype != y.dtype:
            return True
        if x.dtype.is_floating_point or x.dtype.is_complex:
            x, y = torch.view_as_real(x) if x.is_complex() else x, torch.view_as_real(y) if y.is_complex() else y
            nan = torch.isnan(x)
            if not torch.equal(nan, torch.isnan(y)) or not torch.equal(x[~nan], y[~nan]):
                return True
        elif not torch.equal(x, y):
            return True
    return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the warnings and log lines that export and decomposition print per sample."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


# ---- the whole database ----------------------------------------------------------


@dataclasses.dataclass
class OpReport:
    """Per-OpInfo counts and the results of its samples."""

    name: str
    results: list[SampleResult]

    def count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.results)

    @property
    def exported(self) -> int:
        return len(self.results) - self.count("random", "skipped", "not_exportable", "no_tensor_output")

    @property
    def converted(self) -> int:
        return self.count("runtime_error", "mismatch", "match")


def measure(names: set[str] | None, samples: int, budget: float) -> tuple[list[OpReport], int]:
    """Run every selected OpInfo until ``budget`` seconds pass; returns reports and ops left out."""
    deadline = time.perf_counter() + budget
    reports, skipped = [], 0
    for opinfo in op_db():
        name = op_name(opinfo)
        if names is not None and name not in names and opinfo.name not in names:
            continue
        if time.perf_counter() > deadline:
            skipped += 1
            continue
        results = [check_sample(opinfo, s) for s in float32_samples(opinfo, samples)]
        if results:
            reports.append(OpReport(name, results))
            _progress(reports[-1])
    return reports, skipped


def _progress(report: OpReport) -> None:
    marks = "".join({"match": ".", "mismatch": "W", "unsupported": "U", "not_exportable": "-"}.get(r.status, "E") for r in report.results)
    print(f"  {report.name:<40} {marks}", file=sys.stderr, flush=True)


def summarize(reports: list[OpReport]) -> dict[str, Any]:
    """Totals, the untranslated ATen ops by count, and the ops with wrong results or errors."""
    totals = collections.Counter(r.status for rep in reports for r in rep.results)
    missing: collections.Counter[str] = collections.Counter()
    needed_by: dict[str, set[str]] = collections.defaultdict(set)
    problems: dict[str, list[str]] = collections.defaultdict(list)
    for rep in reports:
        for r in rep.results:
            for op in r.missing:
                missing[op] += 1
                needed_by[op].add(rep.name)
            if r.status in ("mismatch", "convert_error", "runtime_error"):
                problems[rep.name].append(f"{r.status}: {r.detail}")
    tried = sum(len(rep.results) for rep in reports)
    exported = sum(rep.exported for rep in reports)
    return {
        "ops": len(reports),
        "samples": tried,
        "exported": exported,
        "converted": sum(rep.converted for rep in reports),
        "matching": totals["match"],
        "statuses": {s: totals[s] for s in STATUSES},
        "untranslated": [{"op": op, "samples": n, "opinfos": sorted(needed_by[op])} for op, n in missing.most_common()],
        "problems": dict(sorted(problems.items())),
        "per_op": {
            rep.name: {"tried": len(rep.results), "exported": rep.exported, "converted": rep.converted, "matching": rep.count("match")}
            for rep in reports
        },
    }


def print_report(summary: dict[str, Any], seconds: float, skipped: int) -> None:
    """The per-op table, the totals, the untranslated ops and the problems."""
    print(f"{'OpInfo op':<40} {'tried':>5} {'export':>6} {'conv':>5} {'match':>5}")
    for name, row in summary["per_op"].items():
        print(f"{name:<40} {row['tried']:>5} {row['exported']:>6} {row['converted']:>5} {row['matching']:>5}")
    exported = summary["exported"] or 1
    print(
        f"\n{summary['ops']} ops, {summary['samples']} samples in {seconds:.0f} s"
        + (f" ({skipped} ops left out: time budget)" if skipped else "")
        + f"\nexported {summary['exported']}, converted {summary['converted']} ({summary['converted'] / exported:.1%}),"
        f" matching {summary['matching']} ({summary['matching'] / exported:.1%} of exported)"
    )
    print("statuses: " + ", ".join(f"{k} {v}" for k, v in summary["statuses"].items()))
    print("\nuntranslated ATen ops (samples needing them):")
    for row in summary["untranslated"]:
        shown = ", ".join(row["opinfos"][:5]) + (", ..." if len(row["opinfos"]) > 5 else "")
        print(f"  {row['samples']:>4}  {row['op']:<45} {shown}")
    print("\nwrong results and errors:")
    for name, lines in summary["problems"].items():
        print(f"  {name}: {lines[0]}" + (f"  (+{len(lines) - 1} more)" if len(lines) > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2, help="samples per OpInfo op (at most 4 is sensible)")
    parser.add_argument("--budget", type=float, default=600, help="seconds before the remaining ops are left out")
    parser.add_argument("--ops", default="", help="comma-separated OpInfo names (default: all)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    opts = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    names = {n.strip() for n in opts.ops.split(",") if n.strip()} or None
    start = time.perf_counter()
    reports, skipped = measure(names, opts.samples, opts.budget)
    summary = summarize(reports)
    print_report(summary, time.perf_counter() - start, skipped)
    if opts.json:
        opts.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
