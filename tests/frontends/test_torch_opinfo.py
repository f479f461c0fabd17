"""The PyTorch front end against torch's own OpInfo database (a bounded selection).

Each OpInfo op below runs its first two CPU float32 sample inputs through the
harness of ``bench/opinfo_coverage.py`` (:func:`check_sample`): the sample is
wrapped in a module, ``torch.export``-ed, converted by the front end, run in
onnxruntime and compared with eager torch (rtol 1e-4, atol 1e-5, NaN equal to
NaN; integers and bools exactly; dtypes and shapes exactly). The outside truth is
torch's own samples and torch's own outputs.

- ``OPS`` must match on every sample; ``FLOOR`` is the number of samples measured
  to match over ``OPS`` (all of them), so coverage cannot fall silently.
- ``KNOWN_GAPS`` are strict xfails with the reason: one that starts to pass
  fails the run, so that it moves to ``OPS``.

The full report (every OpInfo op) is ``python bench/opinfo_coverage.py``.
"""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bench.opinfo_coverage import SampleResult, check_sample, float32_samples, op_db, op_name  # noqa: E402

SAMPLES = 2

OPS = [
    # elementwise, promotion, comparisons
    "add", "sub", "mul", "div.floor_rounding", "remainder", "pow", "atan2", "clamp", "where",
    "masked_fill", "ne", "logical_and", "maximum", "rsqrt", "nan_to_num", "lerp", "xlogy", "logit",
    # reductions and scans
    "sum", "mean", "var", "amax", "any", "cumsum", "max.reduction_with_dim", "log_softmax",
    # linear algebra
    "matmul", "addmm", "baddbmm", "einsum",
    # shapes and indexing
    "cat", "split", "reshape", "permute", "squeeze", "expand", "repeat", "roll", "flip",
    "gather", "take_along_dim", "scatter_add", "tril",
    # layers
    "nn.functional.conv2d", "nn.functional.conv_transpose2d", "nn.functional.max_pool2d",
    "nn.functional.layer_norm", "nn.functional.group_norm", "nn.functional.gelu",
    "nn.functional.scaled_dot_product_attention", "nn.functional.embedding",
    "nn.functional.pad.reflect", "nn.functional.interpolate.bilinear", "nn.functional.cross_entropy",
    # translations added or fixed against this database
    "acosh", "log2", "exp2", "erfc", "hypot", "copysign", "fmax", "signbit", "round.decimals_3",
    "sort", "topk", "kthvalue", "median", "cumprod", "cummax", "logcumsumexp",
    "index_add", "scatter_reduce.mean", "scatter_reduce.amax", "put", "slice_scatter",
    "diagonal", "diagonal_scatter", "linalg.vector_norm", "var_mean", "addmv", "linalg.det",
    "nonzero", "native_layer_norm", "native_batch_norm", "nn.functional.adaptive_avg_pool2d",
    "nn.functional.grid_sample", "eye", "argmax", "index_select", "squeeze.multiple",
    "index_reduce.mean", "unfold", "bucketize", "_batch_norm_with_update",
    # found by the sweep's hand-written modules (bench/sweep_torch_models.py)
    "masked_scatter", "nn.functional.interpolate.bicubic",
]

#: Samples measured to convert and match over OPS (96 ops; signbit has one sample): raise it, never lower it.
FLOOR = 191

KNOWN_GAPS = {
    "nn.functional.adaptive_max_pool2d": "indices of non-divisible adaptive windows are not translated",
    "lgamma": "aten::lgamma: no ONNX op, no composition yet",
    "erfinv": "aten::erfinv: no ONNX op, no composition yet",
    "fft.rfft": "complex outputs (aten::_fft_r2c): the IR front end has no complex dtype mapping",
    "linalg.inv": "aten::linalg_inv_ex (and the with_effects error check): no ONNX op",
    "masked_select": "aten::masked_select: data-dependent output size, not translated",
    "unique": "aten::_unique2: not translated",
    "index_put": "a boolean mask with several values (data-dependent count) is not translated",
    "searchsorted": "empty inputs: onnxruntime's ReduceSum over a 0-length axis keeps the axis",
    "linalg.svd": "aten::_linalg_svd: no ONNX op",
}


@functools.cache
def _opinfos() -> dict[str, object]:
    return {op_name(o): o for o in op_db()}


@functools.cache
def results(name: str) -> tuple[SampleResult, ...]:
    """The first samples of OpInfo ``name``, each checked once per session."""
    opinfo = _opinfos()[name]
    return tuple(check_sample(opinfo, sample) for sample in float32_samples(opinfo, SAMPLES))


def _assert_all_match(name: str) -> None:
    checked = results(name)
    assert checked, f"{name} has no float32 samples"
    failures = [f"{r.status}: {r.detail[:300]}" for r in checked if r.status != "match"]
    assert not failures, f"{name}: " + "; ".join(failures)


@pytest.mark.parametrize("name", OPS)
def test_opinfo_samples_match_torch(name: str) -> None:
    _assert_all_match(name)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=r)) for n, r in KNOWN_GAPS.items()]
)
def test_known_gap(name: str) -> None:
    _assert_all_match(name)


def test_coverage_floor() -> None:
    matching = sum(r.status == "match" for name in OPS for r in results(name))
    assert matching >= FLOOR, f"{matching} of the selected OpInfo samples match torch; the measured floor is {FLOOR}"


def test_selection_names_exist() -> None:
    # A renamed OpInfo must not silently drop out of the selection.
    missing = [n for n in [*OPS, *KNOWN_GAPS] if n not in _opinfos()]
    assert not missing, f"not in torch's op_db: {missing}"
