"""The HTML parity report as a real browser shows it: headless Chromium, offline.

Chromium renders a failing report (the mlp fixture against a copy with one
bias changed, localized, with the pass report of an -O2 run). Its rendered DOM
must hold the verdict, the metrics and the localization; its screenshot must
show the page styled (the red FAIL badge, the histogram's bars), not a blank
or unstyled one. The screenshot and the page are kept under
``out/artifacts/`` for people to look at.

The browser tests are marked ``browser`` and skip where no Chromium binary is
installed (``apt-get install chromium`` on Debian). The report's bad input is
tested through the command: a report path in a missing directory exits 2 with
one message before anything runs, and a report that fails to be written after
validation never hides the verdict, which is printed and sets the exit code.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

import converter
import ir
import passes
from converter import parity
from converter.cli import app
from converter.visual import html_report

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "out" / "artifacts"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium")
_FAIL_RED = (0xC6, 0x28, 0x28)  # the .fail badge background
_BAR_RED = (0xE5, 0x39, 0x35)  # histogram bars above atol


def _chromium() -> str:
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium binary installed")


def _browse(page: pathlib.Path, *args: str, home: pathlib.Path) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--hide-scrollbars", *args, page.as_uri()]
    env = {**os.environ, "HOME": str(home)}  # a profile of its own, not the user's
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture(scope="module")
def failing_report(tmp_path_factory, onnx_fixtures) -> pathlib.Path:
    out = tmp_path_factory.mktemp("report")
    model = onnx.load(str(onnx_fixtures / "mlp.onnx"))
    for init in model.graph.initializer:
        if init.name == "fc2.bias":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.05, init.name))
    onnx.save(model, str(out / "wrong.onnx"))
    report = converter.validate(onnx_fixtures / "mlp.onnx", out / "wrong.onnx", batches=2, localize=True)
    assert not report.passed
    optimized = ir.load(onnx_fixtures / "mlp.onnx")
    pass_report = passes.optimize(optimized, 2)
    return html_report.write(out / "report.html", report, pass_report=pass_report, localization=report.localization)


@pytest.fixture(scope="module")
def wrong_mlp(failing_report) -> pathlib.Path:
    return failing_report.parent / "wrong.onnx"


@pytest.mark.browser
def test_rendered_dom_holds_the_verdict_metrics_and_localization(failing_report, tmp_path):
    result = _browse(failing_report, "--dump-dom", home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert '<span class="verdict fail" id="verdict">FAIL</span>' in dom
    assert 'id="metrics-0"' in dom and 'data-key="max_abs_error"' in dom
    assert 'id="localization-summary"' in dom and 'id="passes"' in dom
    assert dom.count("<rect") >= 3  # the histogram's bars


@pytest.mark.browser
def test_screenshot_shows_the_styled_page(failing_report, tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    shot = tmp_path / "report.png"
    result = _browse(failing_report, f"--screenshot={shot}", "--window-size=1000,1400", home=tmp_path)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "parity_report.png")
    shutil.copy(failing_report, ARTIFACTS / "parity_report.html")
    with image_module.open(shot) as image:
        assert image.size == (1000, 1400)
        pixels = image.convert("RGB")
        colors = pixels.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot is (nearly) blank"
    by_color = {rgb: n for n, rgb in colors}
    white = by_color.get((255, 255, 255), 0)
    assert white < 0.98 * 1000 * 1400, "the screenshot is (nearly) blank"
    assert by_color.get(_FAIL_RED, 0) > 100, "no FAIL badge: the stylesheet did not apply"
    assert by_color.get(_BAR_RED, 0) > 500, "no histogram bars drawn"


# ---- bad input, through the command ------------------------------------------------------

runner = CliRunner()


def _error_lines(result) -> list[str]:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in result.output
    return lines


def test_report_in_a_missing_directory_exits_2_before_any_work(tmp_path, onnx_fixtures, monkeypatch):
    monkeypatch.setattr(parity, "validate", lambda *a, **k: pytest.fail("validation ran"))
    mlp = str(onnx_fixtures / "mlp.onnx")
    result = runner.invoke(app, ["validate", mlp, mlp, "--report", str(tmp_path / "nope" / "report.html")])
    assert result.exit_code == 2
    (line,) = _error_lines(result)
    assert "does not exist" in line and "nope" in line
    assert result.stdout == ""


def test_convert_report_in_a_missing_directory_writes_nothing(tmp_path, onnx_fixtures):
    destination = tmp_path / "mlp.pt"
    result = runner.invoke(app, ["convert", str(onnx_fixtures / "mlp.onnx"), str(destination),
                                 "--report", str(tmp_path / "nope" / "report.html")])
    assert result.exit_code == 2 and len(_error_lines(result)) == 1
    assert not destination.exists()


def _blocked_while_validating(monkeypatch, path: pathlib.Path) -> None:
    """A directory takes the report's path while parity runs: the write fails after the verdict."""
    real = parity.validate

    def validate(*args, **kwargs):
        report = real(*args, **kwargs)
        path.mkdir()
        return report

    monkeypatch.setattr(parity, "validate", validate)


@pytest.mark.parametrize(("wrong", "verdict", "code"), [(False, "parity PASS", 2), (True, "parity FAIL", 1)])
def test_a_failed_report_never_hides_the_verdict(tmp_path, onnx_fixtures, wrong_mlp, monkeypatch, wrong, verdict, code):
    _blocked_while_validating(monkeypatch, tmp_path / "report.html")
    converted = wrong_mlp if wrong else onnx_fixtures / "mlp.onnx"
    result = runner.invoke(app, ["validate", str(onnx_fixtures / "mlp.onnx"), str(converted),
                                 "--report", str(tmp_path / "report.html")])
    assert verdict in result.stdout  # printed, and it sets the exit code when it fails
    assert result.exit_code == code
    (line,) = _error_lines(result)
    assert "report.html" in line and "cannot be written" in line
