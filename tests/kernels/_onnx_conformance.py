"""Runs the ONNX node conformance cases that onnx ships on crossgraph's torch kernels.

Shared by the conformance tests of the executor and of the TorchScript back end.
A case passes when every output matches the expected one in dtype, shape and
value (rtol/atol from the case, onnx's backend-test defaults 1e-3 / 1e-7, NaN
equal to NaN). Sequences compare item by item and empty optionals are ``None``.
Some data sets store inputs and outputs as ``TensorProto`` s (the Cast float /
double / float16 / bfloat16 cases): :func:`as_array` converts them first.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np

import ir
from kernels.executor import MissingKernelsError, as_tensor, run, to_numpy

#: Cases that fail on purpose, as (name regex, reason).
XFAILS: list[tuple[str, str]] = [
    (r"^test_(cast|castlike)_.*(FLOAT8|INT4|UINT4|FLOAT4|INT2|UINT2|STRING|string)", "no torch dtype or string tensors"),
    (r"^test_(cast|castlike)_(no_saturate_)?.*(E4M3|E5M2)", "float8 casts: torch has no ONNX saturate semantics"),
    (r"^test_equal_string", "string tensors"),
    (r"^test_training_dropout", "random dropout in training mode is not reproducible"),
    (r"^test_resize_downsample_scales_(linear|cubic)_align_corners$", "align_corners downsampling by scales rounds sizes differently"),
    (r"bf16_expanded$|_bfloat16(_expanded)?$|^test_attention_.*_bf16(_expanded)?$", "bfloat16/float16 rounding of intermediates exceeds rtol"),
    (r"^test_(quantize|dequantize)linear_.*(e4m3|e5m2|float4|int4|int2|uint4|uint2)", "float8/int4/int2/float4 tensors: no torch dtype (onnxruntime fails these too)"),
    (r"^test_ai_onnx_ml_label_encoder_", "these LabelEncoder cases map strings: no torch string tensors (numeric keys have a kernel)"),
]


#: Further cases that fail through the TorchScript back end only.
TORCHSCRIPT_XFAILS: list[tuple[str, str]] = [
    (r"^test_loop16_seq_none$", "a loop-carried value that changes type (optional sequence -> sequence) is not typable in TorchScript"),
]


def xfail_reason(name: str, runner: str = "executor") -> str | None:
    extra = TORCHSCRIPT_XFAILS if runner == "torchscript" else []
    for pattern, reason in [*XFAILS, *extra]:
        if re.search(pattern, name):
            return reason
    return None


@functools.cache
def cases() -> dict:
    """The onnx node test cases by name."""
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: c for c in node_cases.collect_testcases(None)}


def as_array(value):
    """A data-set entry as numpy: some cases store ``TensorProto`` s, sequences
    are lists and an empty optional is ``None``."""
    import onnx

    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list):
        return [as_array(v) for v in value]
    return value


def _compare_value(case, name: str, actual, exp) -> None:
    if isinstance(exp, list) or exp is None:
        kind = "a sequence" if isinstance(exp, list) else "an empty optional"
        assert isinstance(actual, list) if exp is not None else actual is None, f"{name}: expected {kind}, got {actual!r}"
        if exp is not None:
            assert len(actual) == len(exp), f"{name}: {len(actual)} sequence items != {len(exp)}"
            for i, (a, e) in enumerate(zip(actual, exp, strict=True)):
                _compare_value(case, f"{name}[{i}]", a, e)
        return
    exp = np.asarray(exp)
    if exp.dtype.name == "bfloat16":  # executor results widen bfloat16 to float32
        exp = exp.astype(np.float32)
    actual = np.asarray(actual)
    if actual.dtype.name == "bfloat16":
        actual = actual.astype(np.float32)
    assert actual.dtype == exp.dtype, f"{name}: dtype {actual.dtype} != {exp.dtype}"
    assert actual.shape == exp.shape, f"{name}: shape {actual.shape} != {exp.shape}"
    if exp.dtype.kind in "OSU":
        assert actual.tolist() == exp.tolist(), name
        return
    np.testing.assert_allclose(actual, exp, rtol=case.rtol, atol=case.atol, equal_nan=True, err_msg=name)


def compare(case, model: ir.Model, got: dict, expected: list) -> None:
    for value, exp in zip(model.graph.outputs, expected, strict=True):
        _compare_value(case, value.name, got[value.name], as_array(exp))


def _host(value):
    """A kernel result (tensor, list of tensors for a sequence, None) as numpy."""
    if isinstance(value, list):
        return [_host(v) for v in value]
    return None if value is None else to_numpy(value)


def _device(value):
    if isinstance(value, list):
        return [_device(v) for v in value]
    return None if value is None else as_tensor(value)


def run_executor(case) -> None:
    """Raises MissingKernelsError (no kernel), AssertionError (mismatch) or any kernel error."""
    model = ir.from_proto(case.model)
    for inputs, outputs in case.data_sets:
        feed = {v.name: as_array(a) for v, a in zip(model.graph.inputs, inputs, strict=False)}
        compare(case, model, run(model, feed), outputs)


def run_torchscript(case) -> None:
    """Generates, scripts and runs the case's model through the TorchScript back end."""
    from converter.backends import torchscript

    model = ir.from_proto(case.model)
    module = torchscript.script(model)
    for inputs, outputs in case.data_sets:
        args = [_device(as_array(a)) for a in inputs]
        result = module(*args)
        result = result if isinstance(result, tuple) else (result,)
        got = {v.name: _host(t) for v, t in zip(model.graph.outputs, result, strict=True)}
        compare(case, model, got, outputs)


def run_onnxruntime(case) -> None:
    """Runs the case on onnxruntime's CPU provider (the ceiling for the torch kernels)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(case.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    model = ir.from_proto(case.model)
    for inputs, outputs in case.data_sets:
        result = session.run(None, {n: as_array(a) for n, a in zip(names, inputs, strict=False)})
        got = {v.name: r for v, r in zip(model.graph.outputs, result, strict=True)}
        compare(case, model, got, outputs)


_RUNNERS = {"executor": run_executor, "torchscript": run_torchscript, "onnxruntime": run_onnxruntime}


@functools.cache
def outcome(runner: str, name: str) -> str:
    """``"pass"``, ``"missing"`` or ``"fail: <why>"`` for one case (cached)."""
    fn = _RUNNERS[runner]
    try:
        fn(cases()[name])
    except MissingKernelsError as e:
        return "missing: " + ", ".join(sorted({op for op, _ in e.missing}))
    except Exception as e:  # noqa: BLE001 (any failure of a case is reported, not raised)
        return f"fail: {type(e).__name__}: {e}"
    return "pass"
