"""Hostile and malformed inputs: every one is exit code 2 with one line, nothing written, source untouched.

One table, one case per kind of bad input, run through the real command line
(``crossgraph convert``). For each case the test checks what the user sees (exit
code 2, exactly one ``error:`` line on stderr naming the file, no traceback),
that nothing is written (the destination's folder stays empty: no result, no
staging leftovers), that the source files are byte-for-byte unchanged, and for
the cases that would run code, that the code did not run (a marker file that the
payload would create does not exist).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import pathlib
import shutil
import signal
import zipfile
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from converter.cli import app

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "fixtures" / "models"
CASE_SECONDS = 60


@dataclasses.dataclass
class Case:
    """A hostile input: ``build(tmp)`` returns the source path; ``expect`` is a fragment of the error line."""

    name: str
    build: Callable[[pathlib.Path], pathlib.Path]
    expect: str
    args: tuple[str, ...] = ()
    needs: str | None = None  # a framework the case needs ("tensorflow", "torch")
    xfail: str | None = None  # a known gap, with the reason


# ---- builders ------------------------------------------------------------------


def _copy(name: str) -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        src = MODELS / name
        dst = tmp / src.name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
            for extra in src.parent.glob(src.name + ".data"):
                shutil.copy(extra, tmp / extra.name)
        return dst

    return build


def _truncated(name: str, keep: float = 0.5) -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        path = _copy(name)(tmp)
        target = path / "saved_model.pb" if path.is_dir() else path
        data = target.read_bytes()
        target.write_bytes(data[: int(len(data) * keep)])
        return path

    return build


def _bit_flipped(name: str, offsets: tuple[int, ...]) -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        path = _copy(name)(tmp)
        data = bytearray(path.read_bytes())
        for offset in offsets:
            data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
        return path

    return build


def _onnx(graph: onnx.GraphProto, name: str = "model.onnx") -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        path = tmp / name
        path.write_bytes(model.SerializeToString())
        return path

    return build


def _relu_graph(initializer: TensorProto | None = None, dims: tuple[int, ...] = (2, 3)) -> onnx.GraphProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dims))
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "w"], ["y"])]
    w = initializer if initializer is not None else numpy_helper.from_array(np.ones(dims, np.float32), "w")
    return helper.make_graph(nodes, "g", [x], [y], [w])


def _external(location: str, length: int | None = None, data_bytes: int | None = None) -> Callable[[pathlib.Path], pathlib.Path]:
    """A model whose weight ``w`` (2x3 float32) lives in external data at ``location``."""

    def build(tmp: pathlib.Path) -> pathlib.Path:
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], data_location=TensorProto.EXTERNAL)
        entries = {"location": location, "offset": "0"}
        if length is not None:
            entries["length"] = str(length)
        for k, v in entries.items():
            w.external_data.add(key=k, value=v)
        if data_bytes is not None:
            (tmp / location).write_bytes(b"\0" * data_bytes)
        return _onnx(_relu_graph(w))(tmp)

    return build


def _short_raw_data(tmp: pathlib.Path) -> pathlib.Path:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], raw_data=b"\0" * 8)
    return _onnx(_relu_graph(w))(tmp)


def _absurd_initializer(tmp: pathlib.Path) -> pathlib.Path:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**40, 2**40], raw_data=b"\0" * 24)
    return _onnx(_relu_graph(w))(tmp)


def _absurd_input(tmp: pathlib.Path) -> pathlib.Path:
    w = numpy_helper.from_array(np.ones((1,), np.float32), "w")
    return _onnx(_relu_graph(w, dims=(2**40, 2**40)))(tmp)


def _cyclic(tmp: pathlib.Path) -> pathlib.Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Identity", ["b"], ["y"])]
    return _onnx(helper.make_graph(nodes, "cycle", [x], [y]))(tmp)


def _undefined_input(tmp: pathlib.Path) -> pathlib.Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    return _onnx(helper.make_graph([helper.make_node("Add", ["x", "ghost"], ["y"])], "g", [x], [y]))(tmp)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (written by hand: protobuf refuses to build messages this deep)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _nested_ifs(depth: int) -> Callable[[pathlib.Path], pathlib.Path]:
    """``depth`` If nodes, each in the previous one's then-branch (a recursion bomb for recursive loaders)."""

    def build(tmp: pathlib.Path) -> pathlib.Path:
        out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])
        leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "leaf", [], [out]).SerializeToString()
        graph = leaf
        for _ in range(depth):  # GraphProto.node = 1, NodeProto.attribute = 5, AttributeProto.g = 6, .type = 20
            attrs = b"".join(_field(5, _field(1, name.encode()) + _field(6, g) + _varint(20 << 3) + _varint(5))
                             for name, g in (("then_branch", graph), ("else_branch", leaf)))
            node = _field(1, b"c") + _field(2, b"o") + _field(4, b"If") + attrs
            graph = _field(1, node) + _field(2, b"level") + _field(12, out.SerializeToString())
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
        graph += b"".join(_field(11, v.SerializeToString()) for v in inputs)
        opset = helper.make_opsetid("", 21).SerializeToString()
        path = tmp / "model.onnx"
        path.write_bytes(_varint(1 << 3) + _varint(10) + _field(7, graph) + _field(8, opset))
        return path

    return build


def _empty(name: str) -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        path = tmp / name
        path.write_bytes(b"")
        return path

    return build


def _garbage(name: str) -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        path = tmp / name
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return path

    return build


def _directory(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "not_a_model"
    path.mkdir()
    (path / "readme.txt").write_text("hello")
    return path


def _symlink_loop(tmp: pathlib.Path) -> pathlib.Path:
    os.symlink(tmp / "b.onnx", tmp / "a.onnx")
    os.symlink(tmp / "a.onnx", tmp / "b.onnx")
    return tmp / "a.onnx"


def _fifo(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "pipe.onnx"
    os.mkfifo(path)
    return path


def _zip(name: str, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Callable[[pathlib.Path], pathlib.Path]:
    def build(tmp: pathlib.Path) -> pathlib.Path:
        path = tmp / name
        with zipfile.ZipFile(path, "w", compression=compress) as z:
            for member, data in members.items():
                z.writestr(member, data)
        return path

    return build


def _keras_that_is_hdf5(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "model.keras"
    shutil.copy(MODELS / "tf" / "multi_io.h5", path)
    return path


def _savedmodel_without_variables(tmp: pathlib.Path) -> pathlib.Path:
    path = _copy("tf/cnn_savedmodel")(tmp)
    shutil.rmtree(path / "variables")
    return path


def _marker(tmp: pathlib.Path) -> pathlib.Path:
    return tmp / "PWNED"


class _RunsCommand:
    """Unpickling this runs ``touch <marker>``: a stand-in for any payload."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pt2_with(member_part: str, payload: Callable[[pathlib.Path], bytes], config: bool = False) -> Callable[[pathlib.Path], pathlib.Path]:
    """``multi_out.pt2`` with the member whose name contains ``member_part`` replaced by ``payload``.

    With ``config``, the weights config marks every weight as pickled (so torch would unpickle them).
    """

    def build(tmp: pathlib.Path) -> pathlib.Path:
        path = tmp / "model.pt2"
        data = payload(tmp)
        with zipfile.ZipFile(MODELS / "torch" / "multi_out.pt2") as zin, zipfile.ZipFile(path, "w") as zout:
            for info in zin.infolist():
                content = zin.read(info)
                if member_part in info.filename:
                    content = data
                elif config and info.filename.endswith("model_weights_config.json"):
                    content = content.replace(b'"use_pickle": false', b'"use_pickle": true')
                zout.writestr(info, content)
        return path

    return build


def _torch_pickle(tmp: pathlib.Path) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(((_RunsCommand(_marker(tmp)),), {}), buf)
    return buf.getvalue()


def _pt2_with_aoti(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "model.pt2"
    with zipfile.ZipFile(MODELS / "torch" / "multi_out.pt2") as zin, zipfile.ZipFile(path, "w") as zout:
        root = zin.infolist()[0].filename.split("/")[0]
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        zout.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF" + b"\0" * 60)
    return path


def _pt_that_is_a_pickle(tmp: pathlib.Path) -> pathlib.Path:
    import torch

    path = tmp / "checkpoint.pt"
    torch.save({"w": torch.ones(2), "payload": _RunsCommand(_marker(tmp))}, path)
    return path


# ---- the table -------------------------------------------------------------------

CASES = [
    # ONNX protobuf
    Case("onnx-truncated", _truncated("onnx/cnn.onnx"), "not a valid ONNX protobuf"),
    Case("onnx-bit-flips", _bit_flipped("onnx/cnn.onnx", (0, 1, 2)), "cnn.onnx"),
    Case("onnx-empty-file", _empty("model.onnx"), "empty"),
    Case("onnx-random-bytes", _garbage("model.onnx"), "model.onnx"),
    Case("onnx-tensor-bytes-short", _short_raw_data, "holds 8 bytes"),
    Case("onnx-absurd-initializer-shape", _absurd_initializer, "1099511627776"),
    Case("onnx-absurd-input-shape", _absurd_input, "model.onnx"),
    Case("onnx-cyclic-graph", _cyclic, "malformed graph"),
    Case("onnx-undefined-value", _undefined_input, "malformed graph"),
    Case("onnx-nested-if-200-deep", _nested_ifs(200), "model.onnx"),
    # ONNX external data
    Case("external-data-dotdot-etc-passwd", _external("../../etc/passwd"), "outside the model's folder"),
    Case("external-data-absolute-path", _external("/etc/passwd"), "outside the model's folder"),
    Case("external-data-missing", _external("w.bin"), "missing or truncated"),
    Case("external-data-shorter-than-declared", _external("w.bin", data_bytes=8), "missing or truncated"),
    Case("external-data-length-below-shape", _external("w.bin", length=8, data_bytes=24), "declares 24 bytes"),
    Case("external-data-truncated-fixture", lambda t: _truncate_data(_copy("onnx/external_data.onnx")(t)), "missing or truncated"),
    # paths that are not model files
    Case("directory", _directory, "not a TensorFlow SavedModel"),
    Case("symlink-loop", _symlink_loop, "a.onnx"),
    Case("named-pipe", _fifo, "not a file"),
    # Keras archives
    Case("keras-truncated", _truncated("tf/cnn.keras"), "cnn.keras", needs="tensorflow"),
    Case("keras-that-is-hdf5", _keras_that_is_hdf5, "model.keras", needs="tensorflow"),
    Case("keras-zip-bomb", _zip("bomb.keras", {"config.json": b"{}", "model.weights.h5": b"\0" * (100 * 2**20)},
                                zipfile.ZIP_DEFLATED), "zip bomb"),
    Case("keras-member-escapes", _zip("evil.keras", {"../../etc/evil": b"x", "config.json": b"{}"}), "escapes"),
    Case("keras-not-a-keras-zip", _zip("other.keras", {"hello.txt": b"hi"}), "config.json"),
    Case("h5-truncated", _truncated("tf/multi_io.h5"), "multi_io.h5", needs="tensorflow"),
    # TensorFlow
    Case("graphdef-truncated", _truncated("tf/frozen_cnn.pb", 0.3), "frozen_cnn.pb", needs="tensorflow"),
    Case("savedmodel-truncated-pb", _truncated("tf/cnn_savedmodel"), "saved_model.pb", needs="tensorflow"),
    Case("savedmodel-without-variables", _savedmodel_without_variables, "cnn_savedmodel", needs="tensorflow"),
    # PyTorch
    Case("pt2-truncated", _truncated("torch/multi_out.pt2"), "multi_out.pt2", needs="torch"),
    Case("pt2-random-bytes", _garbage("model.pt2"), "model.pt2", needs="torch"),
    Case("pt2-pickle-runs-os-system", _pt2_with("sample_inputs/model.pt", _torch_pickle), "posix.system", needs="torch"),
    Case("pt2-pickled-weight-runs-os-system", _pt2_with("weights/weight_0", _torch_pickle, config=True), "posix.system",
         needs="torch"),
    Case("pt2-aotinductor-shared-library", _pt2_with_aoti, "native code", needs="torch"),
    Case("pt2-member-escapes", _zip("evil.pt2", {"../../x": b"x"}), "escapes", needs="torch"),
    Case("torchscript-truncated", _truncated("torch/gru.ts.pt"), "gru.ts.pt", needs="torch"),
    Case("pt-that-is-a-pickle-running-os-system", _pt_that_is_a_pickle, "checkpoint.pt", needs="torch"),
]


def _truncate_data(model: pathlib.Path) -> pathlib.Path:
    data = model.with_name(model.name + ".data")
    data.write_bytes(data.read_bytes()[:1000])
    return model


def _digest(path: pathlib.Path) -> dict[str, str]:
    """Hash of every file under ``path`` (the path itself if a file); symlinks by target name."""
    if path.is_symlink() or not path.exists():
        return {str(path): os.readlink(path) if path.is_symlink() else "missing"}
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.is_dir():
        return {path.name: "special"}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def _alarm():
    def timeout(signum, frame):
        raise TimeoutError("crossgraph hung on a hostile input")

    old = signal.signal(signal.SIGALRM, timeout)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []) for c in CASES
])
def test_hostile_input_is_refused_cleanly(case, tmp_path, caplog):
    if case.needs:
        pytest.importorskip(case.needs)
    src_dir = tmp_path / "src"
    out_dir = tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    source = case.build(src_dir)
    before = {p.name: _digest(p) for p in src_dir.iterdir()}
    destination = out_dir / "model.onnx"

    signal.alarm(CASE_SECONDS)
    result = CliRunner().invoke(app, ["convert", str(source), str(destination), *case.args])
    signal.alarm(0)

    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    assert case.expect in lines[0], lines[0]
    assert list(out_dir.iterdir()) == []  # no result, no staging directory left behind
    assert {p.name: _digest(p) for p in src_dir.iterdir()} == before
    assert not _marker(src_dir).exists()  # the payload did not run
    # Outside pytest, a library's warning goes to stderr (logging's last-resort handler): a second line.
    warned = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == []


def test_the_pt2_payload_is_live(tmp_path):
    """The hostile ``.pt2`` of the table really runs its command under plain ``torch.export.load``."""
    torch = pytest.importorskip("torch")
    source = _pt2_with("sample_inputs/model.pt", _torch_pickle)(tmp_path)
    try:
        torch.export.load(str(source))
    except Exception:
        pass
    assert _marker(tmp_path).exists()


def test_unsafe_load_opts_in_to_running_the_pt2_pickle(tmp_path):
    """With ``--unsafe-load`` the user trusts the file: torch's own loader runs (and so does the payload)."""
    pytest.importorskip("torch")
    import converter

    source = _pt2_with("sample_inputs/model.pt", _torch_pickle)(tmp_path)
    try:
        converter.load(source, unsafe_load=True)
    except converter.CrossgraphError:
        pass  # the payload replaced the sample inputs; what matters is that it ran
    assert _marker(tmp_path).exists()


def test_weights_only_loader_reads_what_torch_export_load_reads():
    """On the shipped ``.pt2`` fixtures the safe loader gives torch's own weights, constants and results."""
    torch = pytest.importorskip("torch")
    from converter.frontends.torch.export import load_pt2

    for path in sorted((MODELS / "torch").glob("*.pt2")):
        ours, theirs = load_pt2(path), torch.export.load(str(path))
        assert ours.state_dict.keys() == theirs.state_dict.keys()
        for name, value in theirs.state_dict.items():
            assert torch.equal(ours.state_dict[name], value), (path.name, name)
        assert ours.constants.keys() == theirs.constants.keys()
        args, kwargs = theirs.example_inputs
        expected, got = theirs.module()(*args, **kwargs), ours.module()(*args, **kwargs)
        for a, b in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(expected), strict=True):
            assert torch.equal(a, b), path.name
