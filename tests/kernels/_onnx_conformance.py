"""Runs the ONNX node conformance cases that onnx ships on crossgraph's torch kernels.

Shared by the conformance tests of the executor and of the TorchScript back end.
A case passes when every output matches the expected one in dtype, shape and
value (rtol/atol from the case, onnx's backend-test defaults 1e-3 / 1e-7, NaN
equal to NaN).
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
    (r"^test_(add|div|greater|greater_equal|less|less_equal|max|min|mod|sub)_uint(16|32|64)(_expanded)?$|^test_bitwise_not_3d$|^test_bitshift_(left|right)_uint(16|32|64)$", "torch CPU lacks arithmetic and comparisons on uint16/32/64"),
    (r"^test_equal_string", "string tensors"),
    (r"^test_(cast|castlike)_(BFLOAT16|DOUBLE|FLOAT16|FLOAT)_to_(BFLOAT16|DOUBLE|FLOAT16|FLOAT)(_expanded)?$", "data set inputs are not numpy arrays in this onnx release (harness cannot feed them)"),
    (r"^test_training_dropout", "random dropout in training mode is not reproducible"),
    (r"^test_resize_.*antialias", "Resize antialias is not implemented"),
    (r"^test_resize_downsample_scales_(linear|cubic)_align_corners$", "align_corners downsampling by scales rounds sizes differently"),
    (r"^test_averagepool_2d_ceil_last_window_starts_on_pad$", "ceil_mode window that starts on the pad is kept by torch"),
    (r"^test_averagepool_3d_dilations_large_count_include_pad_is_._ceil_mode_is_True$", "dilated ceil_mode output size"),
    (r"bf16_expanded$|_bfloat16(_expanded)?$|^test_attention_4d_causal_fp16_expanded$", "bfloat16/float16 rounding of intermediates exceeds rtol"),
    (r"^test_range_.*_expanded$", "Loop scan output of a scalar body output gets an extra axis"),
    (r"^test_scan_sum$|^test_scan9_scalar$", "Scan-8 (batched) and scalar scan outputs"),
    (r"^test_einsum_scalar$", "torch.einsum rejects an empty subscript for a 1-element operand"),
    (r"^test_reduce_max_empty_set_bool$", "bool ReduceMax of an empty set"),
]


#: Further cases that fail through the TorchScript back end only.
TORCHSCRIPT_XFAILS: list[tuple[str, str]] = [
    (r"^test_scan9_|^test_linear_attention_.*_expanded$", "the TorchScript back end does not generate Scan"),
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


def compare(case, model: ir.Model, got: dict[str, np.ndarray], expected: list) -> None:
    for value, exp in zip(model.graph.outputs, expected, strict=True):
        actual = got[value.name]
        exp = np.asarray(exp)
        if exp.dtype.name == "bfloat16":  # executor results widen bfloat16 to float32
            exp = exp.astype(np.float32)
        assert actual.dtype == exp.dtype, f"{value.name}: dtype {actual.dtype} != {exp.dtype}"
        assert actual.shape == exp.shape, f"{value.name}: shape {actual.shape} != {exp.shape}"
        np.testing.assert_allclose(actual, exp, rtol=case.rtol, atol=case.atol, equal_nan=True, err_msg=value.name)


def run_executor(case) -> None:
    """Raises MissingKernelsError (no kernel), AssertionError (mismatch) or any kernel error."""
    model = ir.from_proto(case.model)
    for inputs, outputs in case.data_sets:
        feed = {v.name: a for v, a in zip(model.graph.inputs, inputs, strict=False)}
        compare(case, model, run(model, feed), outputs)


def run_torchscript(case) -> None:
    """Generates, scripts and runs the case's model through the TorchScript back end."""
    from converter.backends import torchscript

    model = ir.from_proto(case.model)
    module = torchscript.script(model)
    for inputs, outputs in case.data_sets:
        args = [as_tensor(a) for a in inputs]
        result = module(*args)
        result = result if isinstance(result, tuple) else (result,)
        got = {v.name: to_numpy(t) for v, t in zip(model.graph.outputs, result, strict=True)}
        compare(case, model, got, outputs)


@functools.cache
def outcome(runner: str, name: str) -> str:
    """``"pass"``, ``"missing"`` or ``"fail: <why>"`` for one case (cached)."""
    fn = run_executor if runner == "executor" else run_torchscript
    try:
        fn(cases()[name])
    except MissingKernelsError as e:
        return "missing: " + ", ".join(sorted({op for op, _ in e.missing}))
    except Exception as e:  # noqa: BLE001 (any failure of a case is reported, not raised)
        return f"fail: {type(e).__name__}: {e}"
    return "pass"
