"""A parity report as one self-contained HTML file: ``crossgraph validate --report report.html``.

The page holds the verdict, per output the metrics table and a histogram of
absolute errors, the localization result (first and worst divergent nodes by
source name, and the repro path) and, after a conversion, what each pass did.
Everything is inline (CSS, SVG charts; no script, font or link to fetch), so
the file opens offline, attached to an issue or a CI artifact.

Inputs are the JSON-able dicts the rest of crossgraph produces
(``ParityReport.to_dict()``, ``PassReport.to_dict()``); every string in them
may come from the model and is escaped.

A report output may carry an optional ``"error_histogram"`` field, as made by
:func:`error_histogram`::

    {"edges": [e0, ..., eN],   # N + 1 log-spaced bin edges of |expected - actual|
     "counts": [c0, ..., cN-1],  # elements per bin [e_i, e_i+1) (the last bin is closed)
     "zeros": z,               # elements with no error at all (not in any bin)
     "nonfinite": n}           # elements whose error is inf or NaN (one side NaN)
"""

from __future__ import annotations

import html
import math
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.verdict { display: inline-block; padding: .2em .8em; border-radius: .3em; color: #fff; font-weight: bold; }
.pass { background: #2e7d32; } .fail { background: #c62828; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { padding: .2em .8em; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 .3em; }
.muted { color: #777; }
svg text { font: 10px sans-serif; fill: #444; }
"""

_METRICS = [  # (key, label, how to format)
    ("max_abs_error", "max abs error", "g"),
    ("max_rel_error", "max rel error", "g"),
    ("mismatch_fraction", "mismatch fraction", "%"),
    ("cosine_similarity", "cosine similarity", "f6"),
    ("top1_agreement", "top-1 agreement", "%"),
    ("top5_agreement", "top-5 agreement", "%"),
    ("rtol", "rtol", "g"),
    ("atol", "atol", "g"),
]


def error_histogram(expected: np.ndarray, actual: np.ndarray, bins: int = 20) -> dict[str, Any]:
    """Histogram of ``|expected - actual|`` over log-spaced bins (see the module docstring).

    The bins span whole decades, from the one holding the smallest nonzero
    error to the one holding the largest. Elements NaN on both sides count as
    equal (zero error), as in parity.

    Example:
        >>> h = error_histogram(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.25]), bins=2)
        >>> h["zeros"], h["counts"], h["edges"]
        (1, [1, 1], [0.1, 0.31622776601683794, 1.0])
    """
    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    diff = np.abs(e - a)
    diff[np.isnan(e) & np.isnan(a)] = 0.0
    finite = np.isfinite(diff)
    positive = diff[finite & (diff > 0)]
    result: dict[str, Any] = {
        "edges": [],
        "counts": [],
        "zeros": int(np.count_nonzero(diff == 0)),
        "nonfinite": int(np.count_nonzero(~finite)),
    }
    if positive.size:
        lo = math.floor(math.log10(positive.min()))
        hi = max(math.ceil(math.log10(positive.max())), lo + 1)
        edges = np.logspace(lo, hi, bins + 1)
        edges[0], edges[-1] = min(edges[0], positive.min()), max(edges[-1], positive.max())  # float noise
        counts, _ = np.histogram(positive, edges)
        result["edges"] = [float(x) for x in edges]
        result["counts"] = [int(c) for c in counts]
    return result


def render(
    report: Mapping[str, Any] | Any,
    *,
    pass_report: Mapping[str, Any] | Any | None = None,
    localization: Mapping[str, Any] | None = None,
    title: str = "crossgraph parity report",
) -> str:
    """The HTML page for a parity report.

    Args:
        report: ``ParityReport.to_dict()`` (or the ParityReport itself); outputs
            may carry an ``"error_histogram"`` (see the module docstring).
        pass_report: ``PassReport.to_dict()`` (or the PassReport) after a conversion.
        localization: ``{"first": {"node", "source_name", "op", "max_abs_error"},
            "worst": {...}, "repro": "path"}``; any part may be missing.
        title: the page title.

    Returns:
        One self-contained HTML document.

    Example:
        >>> page = render(parity.validate("a.onnx", "b.onnx").to_dict())   # doctest: +SKIP
    """
    report = _as_dict(report)
    sections = [_header(report, title)]
    sections += [_output_section(i, out) for i, out in enumerate(report.get("outputs", []))]
    if localization:
        sections.append(_localization_section(localization))
    if pass_report is not None:
        sections.append(_passes_section(_as_dict(pass_report)))
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
        '<p class="muted">Generated by crossgraph.</p>\n</body>\n</html>\n'
    )


def check_path(path: str | pathlib.Path) -> pathlib.Path:
    """Refuse a report path that cannot be written, before any work is done.

    Raises:
        InputError: its directory is missing (it is not created: a typo in a
            directory name should not scatter reports), or the path is a directory.
    """
    from converter.errors import InputError

    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise InputError(f"report {path}: the directory {path.parent} does not exist",
                         "create it first, or choose another report path")
    if path.is_dir():
        raise InputError(f"report {path}: is a directory", "give a file name, e.g. report.html")
    return path


def write(path: str | pathlib.Path, report: Mapping[str, Any] | Any, **kwargs: Any) -> pathlib.Path:
    """Render ``report`` (see :func:`render` for the keyword arguments) into ``path``; returns it.

    The file is replaced whole or not at all. A missing parent directory is
    created (the command refuses one up front, with :func:`check_path`).

    Raises:
        InputError: the path cannot be written (a directory, permissions, a full disk).
    """
    from converter.errors import InputError

    path = pathlib.Path(path)
    page = render(report, **kwargs)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"report {path}: cannot be written ({e.strerror or e})",
                         "choose a report path you can write to") from None
    return path


# ---- sections -------------------------------------------------------------------


def _header(report: Mapping[str, Any], title: str) -> str:
    outputs = report.get("outputs", [])
    passed = report.get("passed", bool(outputs) and all(o.get("passed") for o in outputs))
    failed = sum(1 for o in outputs if not o.get("passed"))
    verdict = "PASS" if passed else "FAIL"
    detail = (f"all {len(outputs)} output(s) within tolerance" if passed
              else f"{failed} of {len(outputs)} output(s) differ")
    shapes = ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.get("input_shapes", {}).items())
    return (
        f"<h1>{_e(title)}</h1>\n"
        f'<p><span class="verdict {verdict.lower()}" id="verdict">{verdict}</span> {_e(detail)}</p>\n'
        "<table>"
        f"<tr><th>source</th><td><code>{_e(report.get('source', '?'))}</code></td></tr>"
        f"<tr><th>converted</th><td><code>{_e(report.get('converted', '?'))}</code></td></tr>"
        f"<tr><th>device</th><td>{_e(report.get('device', '?'))}</td></tr>"
        f"<tr><th>inputs</th><td>{shapes or '-'}</td></tr>"
        f"<tr><th>batches</th><td>{_e(report.get('batches', 1))}</td></tr>"
        "</table>"
    )


def _output_section(index: int, out: Mapping[str, Any]) -> str:
    verdict = "PASS" if out.get("passed") else "FAIL"
    rows = "".join(
        f'<tr><th>{label}</th><td class="num" data-key="{key}" data-value="{_e(repr(out.get(key)))}">'
        f"{_fmt(out.get(key), how)}</td></tr>"
        for key, label, how in _METRICS
    )
    note = f'<p class="muted">{_e(out["note"])}</p>' if out.get("note") else ""
    hist = out.get("error_histogram")
    chart = _histogram_svg(hist, out.get("atol")) if hist else '<p class="muted">no error histogram recorded</p>'
    return (
        f'<h2>output <code>{_e(out.get("name", index))}</code> '
        f'<span class="verdict {verdict.lower()}">{verdict}</span></h2>\n'
        f'<p>{_e(out.get("dtype", "?"))} {_e(out.get("shape", "?"))}</p>{note}\n'
        f'<table class="metrics" id="metrics-{index}">{rows}</table>\n{chart}'
    )


def _localization_section(loc: Mapping[str, Any]) -> str:
    rows = []
    for key, label in (("first", "first divergent node"), ("worst", "worst divergent node")):
        node = loc.get(key)
        if not node:
            continue
        rows.append(
            f"<tr><th>{label}</th><td><code>{_e(node.get('source_name') or node.get('node', '?'))}</code></td>"
            f"<td>{_e(node.get('op', '?'))}</td><td><code>{_e(node.get('node', ''))}</code></td>"
            f'<td class="num">{_fmt(node.get("max_abs_error"), "g")}</td></tr>'
        )
    table = (
        '<table id="localization"><tr><th></th><th>source name</th><th>op</th><th>IR node</th>'
        f"<th>max abs error</th></tr>{''.join(rows)}</table>"
    )
    repro = f'<p>repro: <code id="repro">{_e(loc["repro"])}</code></p>' if loc.get("repro") else ""
    # No divergent node (or no localization at all) must say so, not show an empty table.
    text = loc.get("summary") or loc.get("error") or ("" if rows else "no divergent node found")
    summary = f'<p id="localization-summary">{_e(text)}</p>' if text else ""
    if not rows:
        return f"<h2>where the outputs diverge</h2>\n{summary}"
    return f"<h2>where the outputs diverge</h2>\n{summary}\n{table}\n{repro}"


def _passes_section(pr: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{_e(p.get('name'))}</td><td>{_e(p.get('kind'))}</td><td class=\"num\">{_e(p.get('runs'))}</td>"
        f"<td class=\"num\">{_e(p.get('nodes_before'))}</td><td class=\"num\">{_e(p.get('nodes_after'))}</td>"
        f"<td class=\"num\">{_e(p.get('nodes_removed'))}</td><td class=\"num\">{_e(p.get('nodes_added'))}</td>"
        f"<td class=\"num\">{float(p.get('seconds') or 0.0) * 1000:.1f} ms</td></tr>"
        for p in pr.get("passes", [])
    )
    return (
        f"<h2>optimization</h2>\n<p>{_e(pr.get('summary', ''))}</p>\n"
        '<table id="passes"><tr><th>pass</th><th>kind</th><th>runs</th><th>nodes before</th>'
        f"<th>nodes after</th><th>removed</th><th>added</th><th>time</th></tr>{rows}</table>"
    )


# ---- the chart -------------------------------------------------------------------

_W, _H, _PAD, _BASE = 560, 170, 36, 140  # width, height, left padding, baseline y


def _histogram_svg(hist: Mapping[str, Any], atol: float | None) -> str:
    """Bars per error bin (log x axis), with ``0`` and ``inf/NaN`` bars set apart at the ends, and atol marked."""
    edges, counts = list(hist.get("edges", [])), list(hist.get("counts", []))
    zeros, nonfinite = int(hist.get("zeros", 0)), int(hist.get("nonfinite", 0))
    colors = {"exact": "#9e9e9e", "below": "#43a047", "above": "#e53935"}
    slots = len(counts) + 1.5 + (1.5 if nonfinite else 0)  # half a bar of space after "0" and before "inf"
    width = (_W - _PAD - 10) / slots
    x_bins = _PAD + 1.5 * width  # where the first error bin starts
    bars = [(_PAD, "0", zeros, "exact")] + [
        (x_bins + i * width, f"[{lo:.2g}, {hi:.2g})", c, "above" if atol is not None and lo >= atol else "below")
        for i, (lo, hi, c) in enumerate(zip(edges[:-1], edges[1:], counts, strict=False))
    ]
    if nonfinite:
        bars.append((x_bins + (len(counts) + 0.5) * width, "inf/NaN", nonfinite, "above"))
    peak = max(c for _, _, c, _ in bars) or 1
    parts = [f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" aria-label="error histogram">']
    for x, label, count, kind in bars:
        h = (_BASE - 20) * count / peak
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{_BASE - h:.1f}" width="{max(width - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{colors[kind]}"><title>{_e(label)}: {count} elements</title></rect>'
        )
    parts.append(_label(_PAD + width / 2, "0"))
    if nonfinite:
        parts.append(_label(bars[-1][0] + width / 2, "inf/NaN"))
    for i, edge in enumerate(edges):
        decade = math.log10(edge)
        if abs(decade - round(decade)) < 1e-9:  # label whole decades
            parts.append(_label(x_bins + i * width, f"1e{round(decade)}"))
    if atol and edges and edges[0] <= atol <= edges[-1]:
        span = math.log10(edges[-1]) - math.log10(edges[0])
        x = x_bins + (math.log10(atol) - math.log10(edges[0])) / span * width * len(counts)
        parts.append(f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{_BASE}" stroke="#555" stroke-dasharray="3,3"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="14">atol</text>')
    parts.append(f'<line x1="{_PAD}" y1="{_BASE}" x2="{_W - 10}" y2="{_BASE}" stroke="#999"/>')
    parts.append(f'<text x="{_PAD - 4}" y="{_BASE - (_BASE - 20) + 4}" text-anchor="end">{peak}</text>')
    parts.append(_label(_W / 2, "|expected - actual|: elements per bin", _H - 2))
    parts.append("</svg>")
    return "\n".join(parts)


def _label(x: float, text: str, y: float = _BASE + 14) -> str:
    return f'<text x="{x:.1f}" y="{y}" text-anchor="middle">{_e(text)}</text>'


# ---- helpers --------------------------------------------------------------------


def _as_dict(obj: Any) -> Mapping[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, how: str) -> str:
    """A metric for display: ``-`` when absent, ``inf`` spelled out."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return _e(value)
    if how == "%":
        return f"{value:.2%}"
    if how == "f6":
        return f"{value:.6f}"
    return f"{value:.4g}"
