"""The HTML parity report, rendered from real ParityReports of the mlp fixture."""

from __future__ import annotations

import html
import html.parser
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import ir
import passes
from converter import parity
from converter.visual import html_report

_VOID = {"meta", "br", "hr", "img", "input", "link", "col", "rect", "line", "path", "circle"}


class _Page(html.parser.HTMLParser):
    """Checks that tags nest, and collects metric cells and element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.metrics: dict[str, list[tuple[str, str]]] = {}
        self.ids: dict[str, str] = {}
        self._table: str | None = None
        self._cell: tuple[str, str] | None = None
        self._id: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in _VOID:
            self.stack.append(tag)
        if tag == "table" and a.get("class") == "metrics":
            self._table = a["id"]
            self.metrics[self._table] = []
        if tag == "td" and self._table and "data-key" in a:
            self._cell = (a["data-key"], a["data-value"])
            self._text = []
        if "id" in a and tag not in ("table",):
            self._id, self._text = a["id"], []

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag == "table":
            self._table = None
        if tag == "td" and self._cell:
            self.metrics[self._table].append((*self._cell, "".join(self._text)))
            self._cell = None
        elif self._id and tag in ("span", "code"):
            self.ids[self._id] = "".join(self._text)
            self._id = None

    def handle_data(self, data):
        self._text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed tags: {parser.stack}"
    return parser


@pytest.fixture(scope="module")
def mlp_pair(tmp_path_factory, onnx_fixtures):
    """The mlp fixture, a copy with one weight scaled by 1.01, and one input batch."""
    source = onnx_fixtures / "mlp.onnx"
    proto = onnx.load(source)
    w = proto.graph.initializer[0]
    w.raw_data = (np.frombuffer(w.raw_data, np.float32) * 1.01).astype(np.float32).tobytes()
    perturbed = tmp_path_factory.mktemp("html") / "perturbed.onnx"
    onnx.save(proto, perturbed)
    x = np.random.default_rng(0).standard_normal((4, 32)).astype(np.float32)
    return source, perturbed, {"x": x}


def _run(path, feeds) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_error_histogram_bins_by_decade():
    expected = np.zeros(6)
    actual = np.array([0.0, 1e-7, 3e-6, 2e-3, np.inf, np.nan])
    h = html_report.error_histogram(expected, actual, bins=5)
    assert h["zeros"] == 1 and h["nonfinite"] == 2
    assert h["edges"] == pytest.approx([1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    assert h["counts"] == [1, 1, 0, 0, 1]
    # nothing differs: no bins at all
    assert html_report.error_histogram(np.ones(3), np.ones(3)) == {"edges": [], "counts": [], "zeros": 3, "nonfinite": 0}


def test_failing_report_shows_verdict_metrics_and_histogram(mlp_pair):
    source, perturbed, feeds = mlp_pair
    report = parity.validate(source, perturbed, inputs=feeds)
    assert not report.passed
    data = report.to_dict()
    hist = html_report.error_histogram(_run(source, feeds), _run(perturbed, feeds))
    data["outputs"][0]["error_histogram"] = hist
    page = html_report.render(data, title="mlp vs perturbed")
    parsed = _parse(page)
    assert parsed.ids["verdict"] == "FAIL"
    out = report.outputs[0]
    cells = {key: (value, text) for key, value, text in parsed.metrics["metrics-0"]}
    for key in ("max_abs_error", "max_rel_error", "mismatch_fraction", "cosine_similarity", "rtol", "atol"):
        value, text = cells[key]
        assert float(value) == getattr(out, key)
        shown = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
        assert shown == pytest.approx(getattr(out, key), rel=1e-3, abs=1e-4)
    assert cells["top1_agreement"][1] == "100.00%"
    # every element is in the histogram, and the largest error lies in its range
    assert sum(hist["counts"]) + hist["zeros"] + hist["nonfinite"] == out.shape[0] * out.shape[1]
    assert hist["edges"][0] <= out.max_abs_error <= hist["edges"][-1]
    assert page.count("<rect") == 1 + len(hist["counts"])
    assert "atol" in page and "elements</title>" in page


def test_passing_report_with_pass_report_and_localization(mlp_pair, onnx_fixtures):
    source, _, feeds = mlp_pair
    report = parity.validate(source, source, inputs=feeds)
    assert report.passed
    model = ir.load(onnx_fixtures / "mlp.onnx")
    pass_report = passes.optimize(model, 2)
    localization = {
        "first": {"node": "fc1/matmul", "source_name": "fc1", "op": "MatMul", "max_abs_error": 2.5e-3},
        "worst": {"node": "softmax", "source_name": "head.softmax", "op": "Softmax", "max_abs_error": 0.125},
        "repro": "out/repro/fc1.onnx",
    }
    page = html_report.render(report, pass_report=pass_report, localization=localization)
    parsed = _parse(page)
    assert parsed.ids["verdict"] == "PASS"
    assert parsed.ids["repro"] == "out/repro/fc1.onnx"
    assert float(dict((k, v) for k, v, _ in parsed.metrics["metrics-0"])["max_abs_error"]) == 0.0
    # parity records a histogram for every output; identical models put every element in "zeros"
    assert report.outputs[0].error_histogram["zeros"] > 0
    assert "<svg" in page
    assert "head.softmax" in page and "0.125" in page
    # one row per pass, with the counts the PassReport holds
    table = re.search(r'<table id="passes">(.*?)</table>', page, re.S).group(1)
    assert table.count("<tr>") == 1 + len(pass_report.passes)
    assert html.escape(pass_report.summary()) in page
    first = pass_report.passes[0]
    assert f'<td>{first.name}</td><td>{first.kind}</td><td class="num">{first.runs}</td>' in page


def test_page_is_self_contained_and_escapes_model_strings(mlp_pair, tmp_path):
    source, perturbed, feeds = mlp_pair
    data = parity.validate(source, perturbed, inputs=feeds).to_dict()
    data["outputs"][0]["name"] = "<script>alert('out')</script>"
    data["outputs"][0]["note"] = "</table><img src=x onerror=alert(1)>"
    data["source"] = 'model"><script>alert(1)</script>.onnx'
    data["outputs"][0]["error_histogram"] = {"edges": [1e-3, 1e-2], "counts": [20], "zeros": 0, "nonfinite": 0}
    localization = {"first": {"node": "n", "source_name": "<script>x</script>", "op": "<b>Op</b>"}}
    path = html_report.write(tmp_path / "sub" / "report.html", data, localization=localization, title="<i>t</i>")
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<img" not in page and "<i>t</i>" not in page
    assert "&lt;script&gt;alert(&#x27;out&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;Op&lt;/b&gt;" in page
    assert not re.search(r"https?://", page), "the page must not fetch anything"
    assert not re.search(r"<(link|iframe|object|embed)\b|@import|url\(", page)
    _parse(page)
