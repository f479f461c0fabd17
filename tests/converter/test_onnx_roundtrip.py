"""ONNX -> IR -> ONNX is lossless on onnx's own conformance models.

Outside truths: the node test cases and ``light_*.onnx`` models shipped in the onnx
package, ``onnx.checker`` and onnxruntime. For each model the round trip must give
the same protobuf (up to scalar fields explicitly set to their default, like an
empty node ``domain``, which the IR does not keep, and a ``value_info`` entry that
onnx_ir adds for a subgraph initializer), pass the full checker wherever the original does, and give bit-identical
outputs in onnxruntime wherever onnxruntime runs the original.
"""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import ir
from converter.backends.onnx import save as save_onnx
from converter.frontends.onnx import load as load_onnx

LIGHT_DIR = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _case_names() -> list[str]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c.name for c in collect_testcases(None)]


CASES = _case_names()


def _normalized(model: onnx.ModelProto) -> bytes:
    """The model's bytes with explicitly-set default scalars cleared (``domain: ""``,
    ``doc_string: ""``, ``model_version: 0``: the IR does not keep "set to default"),
    and without value_info entries naming a graph's own initializers (onnx_ir adds
    them for subgraph initializers: type information only)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _clear_defaults(model)
    return model.SerializeToString(deterministic=True)


def _clear_defaults(msg) -> None:
    if isinstance(msg, onnx.GraphProto):
        initializers = {t.name for t in msg.initializer}
        kept = [v for v in msg.value_info if v.name not in initializers]
        del msg.value_info[:]
        msg.value_info.extend(kept)
    for field, value in msg.ListFields():
        if field.type == field.TYPE_MESSAGE:
            for item in value if field.is_repeated else [value]:
                _clear_defaults(item)
        elif not field.is_repeated and value == field.default_value:
            msg.ClearField(field.name)


def _passes_checker(model: onnx.ModelProto) -> bool:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception:
        return False
    return True


def _session(model: onnx.ModelProto) -> ort.InferenceSession | None:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:
        return None


def _bit_identical(a: object, b: object) -> bool:
    if isinstance(a, list) or isinstance(b, list):  # sequence outputs
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
            _bit_identical(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:  # optional outputs
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return a.tolist() == b.tolist()
    return a.tobytes() == b.tobytes()


def _roundtrip(model: onnx.ModelProto) -> onnx.ModelProto:
    return ir.serde.serialize_model(load_onnx(model))


def _check(original: onnx.ModelProto, feeds_list: list[list[np.ndarray]]) -> str:
    """Round-trip one model; returns 'ran' when onnxruntime compared outputs, else 'static'."""
    result = _roundtrip(original)
    assert _normalized(result) == _normalized(original), "round trip changed the protobuf"
    if _passes_checker(original):
        onnx.checker.check_model(result, full_check=True)
    s1 = _session(original)
    if s1 is None:
        return "static"
    s2 = _session(result)
    assert s2 is not None, "onnxruntime loads the original but not the round-tripped model"
    ran = "static"
    for inputs in feeds_list:
        feeds = {i.name: v for i, v in zip(s1.get_inputs(), inputs, strict=False)}
        try:
            expected = s1.run(None, feeds)
        except Exception:
            continue
        actual = s2.run(None, feeds)
        for e, a in zip(expected, actual, strict=True):
            assert _bit_identical(e, a), "outputs differ after the round trip"
        ran = "ran"
    return ran


@pytest.mark.parametrize("name", CASES)
def test_node_case_roundtrip_is_lossless(name, node_testcases):
    case = node_testcases[name]
    _check(case.model, [inputs for inputs, _ in case.data_sets])


@pytest.mark.parametrize("path", sorted(LIGHT_DIR.glob("light_*.onnx")), ids=lambda p: p.stem)
def test_light_model_roundtrip_is_lossless(path, tmp_path):
    original = onnx.load(str(path))
    model = load_onnx(path)
    out = tmp_path / "model.onnx"
    save_onnx(model, out)
    assert _normalized(onnx.load(str(out))) == _normalized(original)
    rng = np.random.default_rng(0)
    session = _session(original)
    if session is None:
        pytest.skip("onnxruntime does not run the original")
    feeds = []
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds.append(rng.standard_normal(shape).astype(np.float32) if i.type == "tensor(float)" else np.zeros(shape, np.int64))
    assert _check(original, [feeds]) == "ran"


def test_conformance_count_covers_the_onnx_suite(node_testcases):
    # The suite shipped with onnx 1.23 has 1,884 node cases; a drop means collection broke.
    assert len(node_testcases) >= 1800
