"""What the ``crossgraph`` command prints and writes besides the model: tables, JSON, HTML reports.

Tables are rich on a terminal and aligned plain text in pipes, files and CI, so logs stay readable.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from converter.errors import CrossgraphError


def console():
    from rich.console import Console

    return Console(highlight=False)


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; aligned plain text in pipes, files and CI."""
    if sys.stdout.isatty():
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(title))
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(escape(str(c)) for c in row))
        console().print(table)
        return
    widths = [max(len(str(x)) for x in [c, *(r[i] for r in rows)]) for i, c in enumerate(columns)]
    print(title)
    print("  " + "  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def echo_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def check_outputs(report: str | None, tensorboard: str | None) -> None:
    """Refuse a report path or log directory that cannot be written, before any work (exit 2)."""
    if report:
        from converter.visual import html_report

        html_report.check_path(report)
    if tensorboard:
        from converter.visual import tensorboard as tb

        tb.check_logdir(tensorboard)


def try_write_report(path: str, parity_report: Any, pass_report: Any) -> bool:
    """Write the HTML report; on failure print one error line and return False (the verdict stands)."""
    from converter.visual import html_report

    try:
        html_report.write(path, parity_report, pass_report=pass_report, localization=parity_report.localization)
    except CrossgraphError as e:
        print(f"error: {e.message}" + (f"; {e.hint}" if e.hint else ""), file=sys.stderr)
        return False
    print(f"HTML report: {path}", file=sys.stderr)
    return True


def print_parity(report: Any) -> None:
    rows = [
        [
            o.name, str(o.shape), o.dtype, f"{o.max_abs_error:.3g}", f"{o.max_rel_error:.3g}", f"{o.mismatch_fraction:.2%}",
            "-" if o.cosine_similarity is None else f"{o.cosine_similarity:.6f}",
            "-" if o.top1_agreement is None else f"{o.top1_agreement:.0%}",
            ("PASS" if o.passed else "FAIL") + (f" ({o.note})" if o.note else ""),
        ]
        for o in report.outputs
    ]
    print_table(
        f"{report.source}  vs  {report.converted}  ({report.device})",
        ["output", "shape", "dtype", "max abs", "max rel", "mismatch", "cosine", "top-1", "result"],
        rows,
    )
    print(report.summary())
    if report.localization:
        print(report.localization.get("summary") or report.localization.get("error"))
