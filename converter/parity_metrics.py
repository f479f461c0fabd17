"""Per-output parity metrics: errors, agreement, and whether a match means much.

:func:`compare_output` turns the expected and actual arrays of one output (over
all batches) into an :class:`OutputParity`: max abs / rel error, the fraction of
elements outside ``atol + rtol * |expected|``, cosine similarity, top-1 / top-5
agreement for classifier-like outputs, and the size of the reference values, so a
check against an output that is near zero or constant is reported as weak.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: A float reference output below this magnitude (or spread, relative to its magnitude)
#: makes a weak check.
WEAK_MAGNITUDE = 1e-5

#: (rtol, atol) by dtype name; integer and bool outputs must match exactly.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (5e-2, 1e-2),
}


@dataclasses.dataclass
class OutputParity:
    """Comparison of one output."""

    name: str
    shape: list[int]
    dtype: str
    max_abs_error: float
    max_rel_error: float
    mismatch_fraction: float
    cosine_similarity: float | None
    top1_agreement: float | None
    top5_agreement: float | None
    rtol: float
    atol: float
    passed: bool
    note: str = ""
    error_histogram: dict[str, Any] | None = None
    #: max |expected| and max - min of expected over finite values (None: none, or not compared).
    reference_magnitude: float | None = None
    reference_spread: float | None = None

    @property
    def weakness(self) -> str | None:
        """Why a match of this output proves little, if it does: the source's float output is
        near zero or the same value everywhere (random weights and inputs often do this)."""
        if not self.dtype.startswith(("float", "bfloat")) or self.reference_magnitude is None:
            return None
        if self.reference_magnitude < WEAK_MAGNITUDE:
            return f"output is near zero, max |value| {self.reference_magnitude:.3g}"
        if (self.reference_spread or 0.0) <= WEAK_MAGNITUDE * self.reference_magnitude and self.shape and \
                int(np.prod(self.shape)) > 1:
            return f"output is constant, {self.reference_magnitude:.3g}"
        return None


def elementwise_errors(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(expected, actual, abs error, rel error)`` in float64; NaN against NaN is no error, NaN
    against a number an infinite one."""
    ef, af = expected.astype(np.float64), actual.astype(np.float64)
    diff = np.where(np.isnan(ef) & np.isnan(af), 0.0, np.abs(ef - af))
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = diff / np.maximum(np.abs(ef), np.finfo(np.float64).tiny)
    return ef, af, diff, rel


def compare_output(name: str, pairs: list[tuple[np.ndarray, np.ndarray]], rtol: float | None, atol: float | None,
                   computed_in: str | None = None) -> OutputParity:
    """One output over all batches; ``computed_in`` (``"float16"``) loosens the default tolerance
    of a wider float output to that precision's, for models that compute in half precision."""
    e = np.concatenate([np.asarray(p[0]).reshape(-1) for p in pairs])
    a = np.concatenate([np.asarray(p[1]).reshape(-1) for p in pairs])
    e0, a0 = np.asarray(pairs[0][0]), np.asarray(pairs[0][1])
    dtype = str(e0.dtype)
    default_rtol, default_atol = DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0))
    if computed_in in DEFAULT_TOLERANCES and e0.dtype.kind == "f":
        low_rtol, low_atol = DEFAULT_TOLERANCES[computed_in]
        default_rtol, default_atol = max(default_rtol, low_rtol), max(default_atol, low_atol)
    rt = default_rtol if rtol is None else rtol
    at = default_atol if atol is None else atol
    note = ""
    if e0.shape != a0.shape:
        return OutputParity(name, list(e0.shape), dtype, float("inf"), float("inf"), 1.0, None, None, None, rt, at, False,
                            f"shape differs: expected {list(e0.shape)}, got {list(a0.shape)}")
    if e.size == 0:
        return OutputParity(name, list(e0.shape), dtype, 0.0, 0.0, 0.0, None, None, None, rt, at, True, "empty")
    if e.dtype.kind in "OSU" or a.dtype.kind in "OSU":
        return _compare_strings(name, e0, e, a, rt, at)
    ef, af, diff, rel = elementwise_errors(e, a)
    bad = diff > at + rt * np.abs(np.nan_to_num(ef))
    cosine = None
    if e.dtype.kind == "f":
        norm = np.linalg.norm(ef[np.isfinite(ef)]) * np.linalg.norm(af[np.isfinite(af)])
        cosine = float(np.dot(np.nan_to_num(ef), np.nan_to_num(af)) / norm) if norm > 0 else (1.0 if not diff.any() else 0.0)
    top1 = top5 = None
    if e0.dtype.kind == "f" and e0.ndim == 2 and e0.shape[1] >= 2:
        pe = np.concatenate([np.asarray(p[0]) for p in pairs])
        pa = np.concatenate([np.asarray(p[1]) for p in pairs])
        top1 = float(np.mean(pe.argmax(1) == pa.argmax(1)))
        k = min(5, pe.shape[1])
        te, ta = np.argsort(-pe, 1)[:, :k], np.argsort(-pa, 1)[:, :k]
        top5 = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(te, ta, strict=True)]))
    mismatch = float(bad.mean())
    from converter.visual.html_report import error_histogram

    finite = ef[np.isfinite(ef)]
    magnitude = float(np.abs(finite).max()) if finite.size else None
    spread = float(finite.max() - finite.min()) if finite.size else None
    return OutputParity(
        name, list(e0.shape), dtype, float(diff.max()), float(rel.max()), mismatch, cosine, top1, top5, rt, at,
        mismatch == 0.0, note, error_histogram(e, a), magnitude, spread,
    )


def _text(values: np.ndarray) -> list[str]:
    """String elements as ``str`` (TensorFlow gives UTF-8 bytes, onnxruntime ``str`` objects)."""
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.tolist()]


def _compare_strings(name: str, e0: np.ndarray, e: np.ndarray, a: np.ndarray, rt: float, at: float) -> OutputParity:
    """String outputs (class names) must be equal element by element; an error is 0 or infinite."""
    unequal = np.array([x != y for x, y in zip(_text(e), _text(a), strict=True)])
    mismatch = float(unequal.mean())
    error = float("inf") if unequal.any() else 0.0
    note = "" if not unequal.any() else f"{int(unequal.sum())} string element(s) differ"
    return OutputParity(name, list(e0.shape), "string", error, error, mismatch, None, None, None, rt, at,
                        not unequal.any(), note)
