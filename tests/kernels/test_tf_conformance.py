"""The ONNX node conformance cases (shipped with onnx) on the TensorFlow kernels.

Every case runs eagerly through ``kernels.tf.run`` (the walk the SavedModel back
end traces); the convolution, pooling, shape and control-flow families also run
(a) inside a ``tf.function`` whose signature leaves the batch axis ``None`` and
(b) eagerly with the channels-last layout rules on. A case passes when every
output matches onnx's expected one in dtype, shape and value (the case's
rtol/atol, NaN equal to NaN). Cases whose ops have no kernel are skipped with
the ops named; cases that fail on purpose are xfails with a reason; the pass
counts must not drop below the floors measured when the kernels were written.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from _onnx_conformance import cases

pytest.importorskip("tensorflow")

import ir  # noqa: E402

#: Measured: 1884 cases, 1417 with a TensorFlow kernel for every op, 1264 pass eagerly;
#: traced: 350 cases, 340 with kernels, 321 pass; channels-last: 158, 156, 154.
EAGER_FLOOR = 1255
TRACED_FLOOR = 315
CHANNELS_LAST_FLOOR = 150

#: Cases that fail on purpose, as (name regex, reason).
XFAILS: list[tuple[str, str]] = [
    (r"^test_(cast|castlike)_.*(FLOAT8|FLOAT4|INT4|UINT4|INT2|UINT2|E8M0)", "TensorFlow has no float8/float4/int4/int2 casts with ONNX saturation"),
    (r"^test_bitshift_.*(negative_shift|shift_ge_width)", "TensorFlow shifts by negative or >= width amounts differently"),
    (r"bf16_expanded$|_bfloat16(_expanded)?$|fp16_expanded$", "bfloat16/float16 rounding of intermediates exceeds rtol"),
    (r"^test_maxpool_with_argmax", "MaxPool's Indices output is not implemented"),
    (r"^test_resize_.*antialias", "Resize antialias is not implemented"),
    (r"^test_resize_downsample_scales_(linear|cubic)_align_corners$", "align_corners downsampling by scales: onnx's reference uses the scale, not the sizes"),
    (r"^test_scan_sum$", "Scan-8 (batched) is not implemented"),
    (r"^test_(scatter_elements_with_reduction_mul|scatternd_multiply)$", "TensorFlow has no multiplying scatter"),
    (r"^test_spacetodepth_crd", "SpaceToDepth CRD mode (opset 28) is not implemented"),
    (r"^test_training_dropout", "random dropout in training mode is not reproducible"),
    (r"^test_unique_(not_sorted|sorted_with)", "Unique with an axis or unsorted is not implemented"),
]

#: Further cases that fail traced with a None batch axis only: they resize or split that axis.
TRACED_XFAILS: list[tuple[str, str]] = [
    (r"^test_resize_.*sizes|^test_resize_tf_crop_and_resize(_extrapolation_value)?$", "resizing the dynamic batch axis by sizes/roi needs its static size"),
    (r"^test_split_1d_uneven_split_opset18$", "an uneven split of a dynamic axis"),
]

#: The families that also run traced and channels-last.
TRACED_FAMILIES = re.compile(
    r"^test_(conv|convtranspose|maxpool|averagepool|globalaveragepool|lppool|batchnorm|resize|slice|reshape|"
    r"gather|split|concat|squeeze|unsqueeze|flatten|expand|tile|pad|constant_pad|edge_pad|reflect_pad|wrap_pad|"
    r"if|loop|scan9|range|topk|cumsum|softmax|layer_norm|einsum|matmul|gemm|where|shape|size|transpose)"
)
CHANNELS_LAST_FAMILIES = re.compile(
    r"^test_(conv|convtranspose|maxpool|averagepool|globalaveragepool|globalmaxpool|lppool|batchnorm|"
    r"relu|leakyrelu|prelu|sigmoid|clip|add|mul|sub|div|concat)"
)

NAMES = sorted(cases())


def xfail_reason(name: str, mode: str = "eager") -> str | None:
    for pattern, reason in XFAILS + (TRACED_XFAILS if mode == "traced" else []):
        if re.search(pattern, name):
            return reason
    return None


def _array(a):
    if hasattr(a, "SerializeToString"):  # some data sets hold TensorProtos
        import onnx.numpy_helper

        return onnx.numpy_helper.to_array(a)
    return np.asarray(a)


def _compare(case, model: ir.Model, got: dict, expected: list) -> None:
    for value, exp in zip(model.graph.outputs, expected, strict=True):
        actual, exp = np.asarray(got[value.name]), _array(exp)
        assert actual.dtype == exp.dtype, f"{value.name}: dtype {actual.dtype} != {exp.dtype}"
        assert actual.shape == exp.shape, f"{value.name}: shape {actual.shape} != {exp.shape}"
        if exp.dtype.kind in "OSU":
            assert actual.tolist() == exp.tolist(), value.name
            continue
        if exp.dtype.kind not in "biuf":  # bfloat16 and other ml_dtypes
            actual, exp = actual.astype(np.float32), exp.astype(np.float32)
        np.testing.assert_allclose(actual, exp, rtol=case.rtol, atol=case.atol, equal_nan=True, err_msg=value.name)


def _feeds(model: ir.Model, inputs: list) -> dict:
    return {v.name: _array(a) for v, a in zip(model.graph.inputs, inputs, strict=False)}


def _run_eager(case, channels_last: bool = False) -> None:
    from kernels.tf.run import Walker

    model = ir.from_proto(case.model)
    walker = Walker(model, channels_last=channels_last)  # raises first if an op has no kernel
    for inputs, outputs in case.data_sets:
        got = {k: np.asarray(v) for k, v in walker.run(_feeds(model, inputs)).items()}
        _compare(case, model, got, outputs)


def _traced(walker, feeds: dict):
    """A tf.function of the case's first input, with a None batch axis; the other inputs are
    baked in as constants (in real models they are initializers: shapes, axes, weights)."""
    import tensorflow as tf

    names = list(feeds)
    first = feeds[names[0]]
    rest = dict(list(feeds.items())[1:])
    spec = tf.TensorSpec([None, *first.shape[1:]] if first.ndim else [], tf.as_dtype(first.dtype))

    def call(x):
        return walker.run({names[0]: x, **{k: tf.constant(v) for k, v in rest.items()}})

    return tf.function(call, input_signature=[spec], autograph=False)


def _run_traced(case) -> None:
    from kernels.tf.run import Walker

    model = ir.from_proto(case.model)
    walker = Walker(model)
    for inputs, outputs in case.data_sets:
        feeds = _feeds(model, inputs)
        if not feeds or any(a.dtype.kind in "OSU" for a in feeds.values()):
            continue
        result = _traced(walker, feeds)(next(iter(feeds.values())))
        _compare(case, model, {k: v.numpy() for k, v in result.items()}, outputs)


_RUNNERS = {"eager": _run_eager, "traced": _run_traced, "channels_last": functools.partial(_run_eager, channels_last=True)}


@functools.cache
def outcome(mode: str, name: str) -> str:
    """``"pass"``, ``"missing: <ops>"`` or ``"fail: <why>"`` for one case (cached)."""
    from kernels.executor import MissingKernelsError

    try:
        _RUNNERS[mode](cases()[name])
    except MissingKernelsError as e:
        return "missing: " + ", ".join(sorted({op for op, _ in e.missing}))
    except Exception as e:  # noqa: BLE001 (any failure of a case is reported, not raised)
        return f"fail: {type(e).__name__}: {str(e).strip()[:500]}"
    return "pass"


def _params(names, mode: str = "eager"):
    out = []
    for name in names:
        reason = xfail_reason(name, mode)
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _check(mode: str, name: str) -> None:
    result = outcome(mode, name)
    if result.startswith("missing"):
        pytest.skip(f"no kernel: {result.removeprefix('missing: ')}")
    assert result == "pass", result


TRACED = [n for n in NAMES if TRACED_FAMILIES.search(n)]
CHANNELS_LAST = [n for n in NAMES if CHANNELS_LAST_FAMILIES.search(n)]


@pytest.mark.parametrize("name", _params(NAMES))
def test_eager_matches_onnx_expected_outputs(name: str) -> None:
    _check("eager", name)


@pytest.mark.parametrize("name", _params(TRACED, "traced"))
def test_traced_with_dynamic_batch_matches_onnx_expected_outputs(name: str) -> None:
    _check("traced", name)


@pytest.mark.parametrize("name", _params(CHANNELS_LAST))
def test_channels_last_walk_matches_onnx_expected_outputs(name: str) -> None:
    _check("channels_last", name)


@pytest.mark.parametrize(("mode", "names", "floor"), [
    ("eager", NAMES, EAGER_FLOOR), ("traced", TRACED, TRACED_FLOOR), ("channels_last", CHANNELS_LAST, CHANNELS_LAST_FLOOR),
])
def test_pass_count_does_not_drop(mode: str, names: list[str], floor: int) -> None:
    results = [outcome(mode, n) for n in names]
    passed = sum(r == "pass" for r in results)
    with_kernel = sum(not r.startswith("missing") for r in results)
    print(f"{mode}: {len(names)} cases, {with_kernel} with a kernel for every op, {passed} pass")
    assert passed >= floor, f"{passed} of {len(names)} cases pass in {mode} mode (floor {floor})"


def test_every_xfail_pattern_matches_a_case() -> None:
    for pattern, _ in XFAILS + TRACED_XFAILS:
        assert any(re.search(pattern, n) for n in NAMES), f"stale xfail pattern {pattern!r}"


def test_missing_kernels_are_reported_with_op_names() -> None:
    """A case whose op has no kernel is reported by name, not as a crash."""
    missing = {n: outcome("eager", n) for n in NAMES if outcome("eager", n).startswith("missing")}
    assert missing, "expected some ops without a TensorFlow kernel"
    assert all(re.fullmatch(r"missing: [\w.:, ]+", r) for r in missing.values())
