"""Provenance survives save/load; symbol helpers name, parse and bind dims."""

from __future__ import annotations

import pytest

import converter
import ir


def test_provenance_survives_onnx_round_trip(tmp_path):
    model = ir.from_onnx_text('<ir_version: 10, opset_import: ["" : 21]>\ng (float[batch] x) => (float[batch] y) { y = Relu(x) }')
    node = list(model.graph)[0]
    ir.set_source_name(node, "layer1.0.relu", "torch")
    path = converter.save(model, tmp_path / "m.onnx")
    loaded = converter.load(path)
    back = list(loaded.graph)[0]
    assert ir.source_name(back) == "layer1.0.relu"
    assert ir.provenance.source_framework(back) == "torch"


def test_copy_source_name_keeps_existing():
    a, b = ir.node("Relu", []), ir.node("Neg", [])
    ir.set_source_name(a, "src")
    ir.set_source_name(b, "own")
    c = ir.node("Abs", [])
    ir.copy_source_name(a, b, c)
    assert ir.source_name(b) == "own" and ir.source_name(c) == "src"


def test_default_symbol_names():
    assert ir.default_symbol("x", 0) == "batch"
    assert ir.default_symbol("input_ids", 1) == "input_ids_1"
    assert ir.default_symbol("serving:0", 2) == "serving_0_2"


@pytest.mark.parametrize(("text", "dims"), [
    ("1x3x224x224", [1, 3, 224, 224]),
    ("batch x 3 x 224 x 224", ["batch", 3, 224, 224]),
    ("batch,seq", ["batch", "seq"]),
    ("?x10", [None, 10]),
    ("", []),
])
def test_parse_shape(text, dims):
    assert ir.parse_shape(text) == dims


def test_parse_shape_rejects_garbage():
    with pytest.raises(ValueError, match="bad dim"):
        ir.parse_shape("1x3.5")


def test_bind_symbols_uses_one_size_per_symbol():
    model = ir.from_onnx_text(
        '<ir_version: 10, opset_import: ["" : 21]>\n'
        "g (float[batch, seq] a, float[batch, 4] b) => (float[batch, seq] y) { y = Relu(a) }"
    )
    assert ir.bind_symbols(model, {"seq": 7}, default=2) == {"a": (2, 7), "b": (2, 4)}
    assert ir.symbolic_dims(model) == ["batch", "seq"]
    with pytest.raises(ValueError, match="has no size"):
        ir.bind_symbols(model, {}, default=None)
