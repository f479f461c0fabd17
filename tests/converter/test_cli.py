"""The crossgraph command: bad input exits 2 with one line, writes are atomic, output is true."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from converter.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_missing_source(tmp_path):
    line = _one_line_error(_run("convert", str(tmp_path / "nope.onnx"), str(tmp_path / "out.onnx")))
    assert "no such file or directory" in line


def test_directory_that_is_not_a_model(tmp_path):
    line = _one_line_error(_run("inspect", str(tmp_path)))
    assert "not a TensorFlow SavedModel" in line


def test_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n")
    line = _one_line_error(_run("inspect", str(bad)))
    assert str(bad) in line and "ONNX" in line


def test_truncated_protobuf(tmp_path, onnx_fixtures):
    data = (onnx_fixtures / "cnn.onnx").read_bytes()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[: len(data) // 2])
    line = _one_line_error(_run("inspect", str(bad)))
    assert "cut.onnx" in line


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.onnx"
    bad.write_bytes(b"")
    assert "empty" in _one_line_error(_run("inspect", str(bad)))


def test_unknown_extension(tmp_path):
    bad = tmp_path / "model.xyz"
    bad.write_bytes(b"123")
    line = _one_line_error(_run("inspect", str(bad)))
    assert "--from" in line


def test_unknown_target_extension(tmp_path, onnx_fixtures):
    line = _one_line_error(_run("convert", str(onnx_fixtures / "mlp.onnx"), str(tmp_path / "out.xyz")))
    assert "--to" in line


def test_missing_external_data(tmp_path, onnx_fixtures):
    shutil.copy(onnx_fixtures / "external_data.onnx", tmp_path / "external_data.onnx")
    line = _one_line_error(_run("inspect", str(tmp_path / "external_data.onnx")))
    assert "external data missing" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_destination(tmp_path, onnx_fixtures):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = _one_line_error(_run("convert", str(onnx_fixtures / "mlp.onnx"), str(locked / "out.onnx")))
        assert "not writable" in line
    finally:
        locked.chmod(0o700)


def test_destination_on_a_read_only_file_system(onnx_fixtures):
    # /proc refuses new files even for root, like a read-only mount.
    line = _one_line_error(_run("convert", str(onnx_fixtures / "mlp.onnx"), "/proc/crossgraph-out.onnx"))
    assert "cannot write" in line or "not writable" in line


def test_destination_in_missing_directory(tmp_path, onnx_fixtures):
    line = _one_line_error(_run("convert", str(onnx_fixtures / "mlp.onnx"), str(tmp_path / "no" / "out.onnx")))
    assert "does not exist" in line


def test_failed_conversion_leaves_existing_destination_untouched(tmp_path, onnx_fixtures):
    dest = tmp_path / "out.onnx"
    dest.write_bytes(b"precious")
    # Gelu exists only from opset 20: converting down to 18 must fail cleanly.
    line = _one_line_error(_run("convert", str(onnx_fixtures / "mlp.onnx"), str(dest), "--opset", "18"))
    assert "opset" in line
    assert dest.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]  # no partial or temp output


def test_source_is_never_touched(tmp_path, onnx_fixtures):
    src = tmp_path / "cnn.onnx"
    shutil.copy(onnx_fixtures / "cnn.onnx", src)
    before = src.read_bytes()
    assert _run("convert", str(src), str(src), "-O", "0").exit_code == 0  # in-place is allowed: staged, then replaced
    _one_line_error(_run("convert", str(src), str(tmp_path / "x.onnx"), "--opset", "3"))
    assert onnx.load(str(src)).graph.name == onnx.load_from_string(before).graph.name


def test_convert_onnx_to_onnx_checks_parity(tmp_path, onnx_fixtures):
    dest = tmp_path / "cnn.onnx"
    result = _run("convert", str(onnx_fixtures / "cnn.onnx"), str(dest), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["parity"]["passed"]
    _same_outputs(onnx_fixtures / "cnn.onnx", dest, {"x": (4, 3, 32, 32)})


def test_convert_to_older_opset(tmp_path, onnx_fixtures):
    dest = tmp_path / "cnn17.onnx"
    result = _run("convert", str(onnx_fixtures / "cnn.onnx"), str(dest), "--opset", "17")
    assert result.exit_code == 0, result.output
    model = onnx.load(str(dest))
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    _same_outputs(onnx_fixtures / "cnn.onnx", dest, {"x": (2, 3, 32, 32)})


def test_external_data_is_kept(tmp_path, onnx_fixtures):
    dest = tmp_path / "ext.onnx"
    assert _run("convert", str(onnx_fixtures / "external_data.onnx"), str(dest), "-O", "0").exit_code == 0
    assert (tmp_path / "ext.onnx.data").stat().st_size > 50_000
    assert dest.stat().st_size < 10_000  # weights are not inline
    _same_outputs(onnx_fixtures / "external_data.onnx", dest, {"x": (3, 32)})


def test_inspect_json_matches_the_model(onnx_fixtures):
    result = _run("inspect", str(onnx_fixtures / "attention.onnx"), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    proto = onnx.load(str(onnx_fixtures / "attention.onnx"))
    assert info["nodes"] == len(proto.graph.node)
    assert info["inputs"] == [{"name": "x", "dtype": "float", "shape": "[batch, seq, 16]"}]
    assert info["symbols"] == ["batch", "seq"]
    assert info["parameters"] == sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    assert info["op_histogram"]["MatMul"] == 5


def test_inspect_text_form_parses_back(onnx_fixtures):
    result = _run("inspect", str(onnx_fixtures / "control_flow.onnx"), "--text")
    assert result.exit_code == 0
    text = result.stdout[result.stdout.index("<"):]
    assert onnx.parser.parse_model(text).graph.name == "control_flow"


def test_formats_lists_onnx_both_ways():
    data = json.loads(_run("formats", "--json").stdout)
    onnx_row = next(r for r in data if r["format"] == "onnx")
    assert onnx_row["read"] and onnx_row["write"]


def test_validate_detects_a_different_model(tmp_path, onnx_fixtures):
    assert _run("validate", str(onnx_fixtures / "mlp.onnx"), str(onnx_fixtures / "mlp.onnx")).exit_code == 0
    other = tmp_path / "other.onnx"
    model = onnx.load(str(onnx_fixtures / "mlp.onnx"))
    for init in model.graph.initializer:
        if init.name == "fc2.bias":  # (fc3.bias + 1 would cancel in the softmax)
            arr = onnx.numpy_helper.to_array(init) + 1.0
            init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(model, other)
    result = _run("validate", str(onnx_fixtures / "mlp.onnx"), str(other))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout


@pytest.mark.parametrize("command", ["convert", "validate", "inspect", "optimize", "formats"])
def test_every_command_has_help_with_an_example(command):
    result = _run(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout


def test_console_script_runs_and_exits_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "converter", "inspect", str(tmp_path / "missing.onnx")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def _same_outputs(a, b, shapes):
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal(v).astype(np.float32) for k, v in shapes.items()}
    ra = ort.InferenceSession(str(a)).run(None, feeds)
    rb = ort.InferenceSession(str(b)).run(None, feeds)
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_a_back_end_refusing_a_form_of_an_op_is_a_clear_error(tmp_path, onnx_fixtures, monkeypatch):
    """A kernel or generator raising NotImplementedError (an attribute value or an op form it
    does not handle) is exit 2 with the reason, not an internal error, and nothing is written."""
    from converter.backends import torchscript

    def refuse(*args, **kwargs):
        raise NotImplementedError("FusedMatMul with transBatchA=1 is not implemented")

    monkeypatch.setattr(torchscript, "save", refuse)
    dest = tmp_path / "out.pt"
    line = _one_line_error(_run("convert", str(onnx_fixtures / "cnn.onnx"), str(dest)))
    assert "torchscript back end cannot write this model yet" in line and "transBatchA=1" in line
    assert not dest.exists() and list(tmp_path.iterdir()) == []
