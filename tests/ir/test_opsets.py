"""OpRegistry: versioned, per-device lookup with clear errors."""

from __future__ import annotations

import pytest

import ir


def _table() -> ir.OpRegistry:
    table = ir.OpRegistry("test kernels")

    @table.register("Squeeze", since=1)
    def squeeze_v1():
        return "v1"

    @table.register("Squeeze", since=13)
    def squeeze_v13():
        return "v13"

    @table.register("Squeeze", since=13, device="cuda")
    def squeeze_v13_cuda():
        return "v13-cuda"

    return table


@pytest.mark.parametrize(("opset", "device", "expected"), [
    (11, None, "v1"), (12, "cuda", "v1"), (13, None, "v13"), (21, None, "v13"), (21, "cuda", "v13-cuda"), (21, "cpu", "v13"),
])
def test_lookup_takes_newest_at_or_below_opset(opset, device, expected):
    assert _table().lookup("Squeeze", opset, device)() == expected


def test_missing_lookup_names_op_table_and_device():
    with pytest.raises(NotImplementedError, match=r"test kernels: no entry for 'Relu' at opset 21 on cuda"):
        _table().lookup("Relu", 21, "cuda")


def test_lookup_below_first_version_fails():
    table = ir.OpRegistry("t")
    table.register("Gelu", since=20)(lambda: None)
    with pytest.raises(NotImplementedError, match="registered from opsets"):
        table.lookup("Gelu", 18)


def test_registering_twice_raises():
    table = _table()
    with pytest.raises(ValueError, match="already registered"):
        table.register("Squeeze", since=13)(lambda: None)


def test_unknown_onnx_op_name_raises():
    with pytest.raises(ValueError, match="not an operator of the ONNX default domain"):
        ir.OpRegistry("t").register("Relux")


def test_pattern_validation_for_framework_tables():
    table = ir.OpRegistry("aten", validate=r"aten::\w+(\.\w+)?")
    table.register("aten::add.Tensor")(lambda: None)
    with pytest.raises(ValueError, match="does not match"):
        table.register("add")


def test_model_opset_reads_default_domain():
    model = ir.from_onnx_text('<ir_version: 10, opset_import: ["" : 17]>\ng (float x) => (float y) { y = Relu(x) }')
    assert ir.model_opset(model) == 17


def test_ops_of_other_domains_register_under_domain_keys():
    table = ir.OpRegistry("demo kernels")

    @table.register("ai.onnx.ml::Binarizer", since=1)
    def binarizer(x):
        return x

    assert ir.op_key("Binarizer", "ai.onnx.ml") == "ai.onnx.ml::Binarizer"
    assert ir.split_op_key("ai.onnx.ml::Binarizer") == ("ai.onnx.ml", "Binarizer")
    assert ir.split_op_key("Relu") == ("", "Relu")
    assert table.lookup("ai.onnx.ml::Binarizer", opset=1) is binarizer
    with pytest.raises(ValueError, match="domain 'ai.onnx.ml'"):
        table.register("ai.onnx.ml::Relu")
