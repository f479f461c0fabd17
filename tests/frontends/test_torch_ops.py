"""Per-op checks of the ATen translations: torch eager ≈ onnxruntime on the converted IR.

Every case is a micro-module exported with a symbolic ``batch`` dim (and
``seq`` where named), converted, and run at two sizes against torch itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import ir  # noqa: E402
from converter.frontends.torch import load  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402

B = "batch"
FLOAT, INT = "float32", "int64"


@dataclasses.dataclass
class Case:
    """A function of 1-3 tensors, the specs of its inputs, and the ops it must produce."""

    name: str
    fn: Callable[..., Any] | nn.Module
    inputs: list[tuple[tuple[Any, ...], str]]
    expect: tuple[str, ...] = ()
    tol: float = 1e-5


class Fn(nn.Module):
    """Wraps a function (and optional submodule) as a module with named arguments."""

    def __init__(self, fn: Callable[..., Any], n: int) -> None:
        super().__init__()
        self.fn, self.n = fn, n

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None) -> Any:
        return self.fn(*[x, y, z][: self.n])


#: the table the functional embedding_bag cases read (10 rows, as nn.Embedding's case)
BAG_TABLE = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))


def conv_t() -> nn.Module:
    return nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)


CASES = [
    # elementwise, type promotion, scalars
    Case("add_int_float_scalar", lambda x: x + 2.5, [((B, 3), INT)]),
    Case("sub_alpha", lambda x, y: torch.sub(x, y, alpha=2), [((B, 3), FLOAT), ((B, 3), FLOAT)]),
    Case("mul_int_tensor_float", lambda x, y: x * y, [((B, 3), INT), ((B, 3), FLOAT)]),
    Case("true_div_ints", lambda x, y: x / (y.abs() + 1), [((B, 4), INT), ((B, 4), INT)]),
    Case("floor_divide", lambda x, y: torch.div(x, y.abs() + 1, rounding_mode="floor"), [((B, 4), INT), ((B, 4), INT)]),
    Case("trunc_divide_float", lambda x: torch.div(x, 0.7, rounding_mode="trunc"), [((B, 4), FLOAT)]),
    Case("remainder_float", lambda x: torch.remainder(x, 0.3), [((B, 4), FLOAT)]),
    Case("rsub_pow", lambda x: 1 - x**3 + x.pow(2), [((B, 4), FLOAT)]),
    Case("unary_math", lambda x: torch.exp(x).log1p() + x.abs().sqrt() + torch.rsqrt(x.abs() + 1) + x.sin() * x.cos(), [((B, 5), FLOAT)]),
    Case("roundings", lambda x: (x * 3).floor() + (x * 3).ceil() + (x * 3).round() + x.sign(), [((B, 5), FLOAT)]),
    Case("activations", lambda x: F.gelu(x) + F.gelu(x, approximate="tanh") + F.silu(x) + F.mish(x) + F.softplus(x), [((B, 5), FLOAT)], ("Mish", "Gelu")),
    Case("clamps", lambda x: F.hardtanh(x) + F.relu6(x * 4) + x.clamp(min=-0.2) + x.clamp(-0.5, 0.5), [((B, 5), FLOAT)]),
    Case("leaky_elu_hard", lambda x: F.leaky_relu(x, 0.1) + F.elu(x) + F.hardswish(x) + F.hardsigmoid(x) + F.selu(x), [((B, 5), FLOAT)], ("HardSwish", "HardSigmoid", "LeakyRelu", "Elu")),
    Case("erf_sigmoid_tanh", lambda x: torch.erf(x) + torch.sigmoid(x) * torch.tanh(x), [((B, 5), FLOAT)]),
    Case("compare_where", lambda x, y: torch.where(x > y, x, y * 2) + (x <= 0.1).float() + (x != y).long(), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("compare_int_float_scalar", lambda x: (x >= 0.5) & (x < 3) | ~(x == 1), [((B, 5), INT)]),
    # as_strided: the restride adaptive_avg_pool1d decomposes to (dynamic batch), and a windowed view
    Case("adaptive_avg_pool1d", lambda x: F.adaptive_avg_pool1d(x.transpose(1, 2), 1).flatten(1), [((B, 5, 8), FLOAT)]),
    Case("as_strided_windows", lambda x: torch.as_strided(x, (3, 2, 2), (4, 1, 2), 1) * 2, [((4, 5), FLOAT)], ("Gather",)),
    Case("masked_fill_max_min", lambda x, y: x.masked_fill(y > 0, -1.0) + torch.maximum(x, y) - torch.minimum(x, y), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("trig_hyperbolic", lambda x: x.tanh().asin() + x.tanh().acos() + x.atan() + x.sinh() * x.cosh() + (x * 0.5).tan(), [((B, 5), FLOAT)]),
    Case("atan2", lambda x, y: torch.atan2(x, y), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("isnan_isinf", lambda x: (torch.isnan(x.log()), torch.isinf(1 / (x - x))), [((B, 5), FLOAT)]),
    Case("fmod_remainder_tensors", lambda x, y: (torch.fmod(x, y.abs() + 0.5), torch.remainder(x, y.abs() + 0.5), torch.fmod(x, 0.3)), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("int_fmod_remainder", lambda x: (torch.fmod(x, 2), torch.remainder(x, 2), x // 2), [((B, 5), INT)]),
    Case("clamp_tensor", lambda x, y: x.clamp(min=y, max=y + 1), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("logical_or_xor", lambda x, y: (torch.logical_or(x > 0, y > 0), torch.logical_xor(x > 0, y > 0), (x > 0) ^ (y > 0)), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("expm1_neg_reciprocal_pow", lambda x, y: (torch.expm1(x), -x, x.reciprocal(), x.abs().pow(y), 2.0**x, torch.trunc(x * 3)), [((B, 5), FLOAT), ((B, 5), FLOAT)]),
    Case("casts", lambda x: x.to(torch.int32).to(torch.float64) + x.double().half().float().double(), [((B, 5), FLOAT)]),
    # reductions
    Case("sum_mean", lambda x: x.sum() + x.mean(dim=(1, 2)) + x.sum(-1, keepdim=True).mean(1).squeeze(-1), [((B, 3, 4), FLOAT)]),
    Case("amax_amin_prod", lambda x: x.amax(1) - x.amin(-1) + x.prod(1), [((B, 4), FLOAT)]),
    Case("max_dim_argmax", lambda x: (x.max(1).values, x.max(1).indices, x.argmax(), x.min(-1).indices), [((B, 4), FLOAT)]),
    Case("var_std", lambda x: (x.var(1), x.std(dim=(0, 1)), x.var(-1, unbiased=False, keepdim=True)), [((B, 6), FLOAT)], tol=1e-4),
    Case("any_all_int_sum", lambda x: ((x > 0).any(1), (x > -1).all(), (x > 0).sum(1)), [((B, 6), FLOAT)]),
    Case("cumsum_logsumexp", lambda x: x.cumsum(1) + x.logsumexp(1, keepdim=True), [((B, 6), FLOAT)], ("CumSum", "ReduceLogSumExp")),
    Case("argmin_max_min_all", lambda x: (x.argmin(1), x.max(), x.min(), x.argmin()), [((B, 4), FLOAT)]),
    Case("softmaxes", lambda x: x.softmax(-1) + x.log_softmax(1), [((B, 6), FLOAT)]),
    # shapes
    Case("view_dynamic", lambda x: x.view(x.shape[0] * 2, -1).reshape(-1, 3, 2), [((B, 4, 3), FLOAT)], ("Reshape",)),
    Case("permute_transpose_t", lambda x: (x.permute(2, 0, 1), x.transpose(0, 2), x[:, 0].t()), [((B, 4, 3), FLOAT)]),
    Case("expand_dynamic", lambda x, y: x.expand(y.shape[0], -1, 4) + y, [((1, 3, 1), FLOAT), ((B, 3, 4), FLOAT)], ("Expand",)),
    Case("squeeze_unsqueeze_flatten", lambda x: x.squeeze(1).unsqueeze(-1).flatten(1), [((B, 1, 4), FLOAT)]),
    Case("einsum_three_operands", lambda x, y: torch.einsum("bsd,de,bte->bst", x, y, x),  # opt_einsum fixed b and s
         [((B, 3, 4), FLOAT), ((4, 4), FLOAT)], tol=1e-4),
    Case("cat_stack", lambda x, y: (torch.cat([x, y, x], 1), torch.stack([x, y], -1)), [((B, 3), FLOAT), ((B, 3), INT)]),
    Case("split_chunk_unbind", lambda x: (*x.split(2, 1), *x.chunk(2, 1), *x.split([1, 4], 1), *x[:, :3].unbind(1)), [((B, 5), FLOAT)]),
    Case("slice_select_narrow", lambda x: (x[:, 1:-1:2], x[:, -1], x.narrow(1, 1, 2), x[:, 1:]), [((B, 6), FLOAT)]),
    Case("flip_repeat_pad", lambda x: (x.flip(1), x.repeat(2, 1, 3), F.pad(x, (1, 2), value=0.5)), [((B, 4), FLOAT)]),
    Case("tril_triu", lambda x: torch.tril(x) + torch.triu(x, 1), [((B, 4, 4), FLOAT)], ("Trilu",)),
    # indexing
    Case("index_one_tensor", lambda x, i: x[:, i], [((B, 5), FLOAT), ((3,), INT)]),
    Case("index_two_adjacent", lambda x, i: x[:, i, i + 1], [((B, 5, 6, 2), FLOAT), ((2, 3), INT)]),
    Case("index_two_leading", lambda x, i: x[i, i % 2], [((B, 4, 3), FLOAT), ((3,), INT)]),
    Case("gather_index_select", lambda x, i: (x.gather(1, i), x.index_select(1, i[0])), [((B, 5), FLOAT), ((B, 3), INT)]),
    Case("scatter_add", lambda x, i: x.scatter_add(1, i, x[:, :1] * 2), [((B, 5), FLOAT), ((B, 1), INT)]),
    Case("scatter", lambda x, i: x.scatter(1, i, 1.5), [((B, 5), FLOAT), ((B, 1), INT)]),
    # creation
    Case("creation_dynamic", lambda x: (torch.zeros_like(x) + torch.ones(x.shape[0], 2) + torch.full((x.shape[0], 2), 3.0), torch.arange(x.shape[0] * 2)), [((B, 2), FLOAT)]),
    Case("new_and_arange_float", lambda x: x.new_zeros(x.shape[0], 3) + torch.arange(0, 1.5, 0.5), [((B, 2), FLOAT)]),
    Case("symint_arithmetic", lambda x: (torch.arange(x.shape[0] // 2 + 1), x.reshape(x.shape[0] - 1 + 1, -1) * 2, torch.full((2,), x.shape[0] % 3), torch.full((2,), x.shape[0] / 2), x.new_ones(x.shape[0] * 2 - 1)), [((B, 2), FLOAT)]),
    # linear algebra
    Case("matmuls", lambda x, y: (x @ y, torch.bmm(x, y), x[0] @ y[0]), [((B, 3, 4), FLOAT), ((B, 4, 2), FLOAT)]),
    Case("linear_3d", nn.Linear(4, 3), [((B, 5, 4), FLOAT)], ("MatMul",)),
    Case("addmm_baddbmm", lambda x, y: (torch.addmm(y[0, 0], x[0], y[0], beta=0.5, alpha=2.0), torch.baddbmm(x @ y @ y.transpose(1, 2), x, y @ y.transpose(1, 2), alpha=0.5)), [((B, 2, 2), FLOAT), ((B, 2, 2), FLOAT)]),
    # nn layers
    Case("conv1d_dilated", nn.Conv1d(3, 4, 3, dilation=2, padding=2), [((B, 3, 10), FLOAT)], ("Conv",)),
    Case("conv2d_depthwise_stride", nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4), [((B, 4, 9, 9), FLOAT)], ("Conv",)),
    Case("conv3d", nn.Conv3d(2, 3, 2), [((B, 2, 4, 4, 4), FLOAT)], ("Conv",)),
    Case("conv_transpose_groups", conv_t(), [((B, 4, 5, 5), FLOAT)], ("ConvTranspose",)),
    Case("batch_norm_1d", nn.BatchNorm1d(4, affine=False), [((B, 4, 6), FLOAT)], ("BatchNormalization",)),
    Case("layer_norm", nn.LayerNorm([3, 4]), [((B, 3, 4), FLOAT)], ("LayerNormalization",)),
    Case("group_norm", nn.GroupNorm(2, 6), [((B, 6, 3, 3), FLOAT)], ("InstanceNormalization",), tol=1e-4),
    Case("max_pool_indices", nn.MaxPool2d(2, return_indices=True), [((B, 2, 6, 6), FLOAT)], ("MaxPool",)),
    Case("max_pool_ceil_1d", nn.MaxPool1d(3, 2, ceil_mode=True), [((B, 2, 8), FLOAT)], ("MaxPool",)),
    Case("pools_3d", nn.Sequential(nn.MaxPool3d(2), nn.AvgPool3d(2, 1), nn.AdaptiveAvgPool3d(1)), [((B, 2, 6, 6, 6), FLOAT)], ("MaxPool", "AveragePool")),
    Case("avg_pool_no_pad_count", nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), [((B, 2, 7, 7), FLOAT)], ("AveragePool",)),
    Case("adaptive_avg_pool", nn.AdaptiveAvgPool2d((2, 3)), [((B, 2, 4, 6), FLOAT)]),
    Case("upsample_nearest", nn.Upsample(scale_factor=2, mode="nearest"), [((B, 2, 3, 4), FLOAT)], ("Resize",)),
    Case("upsample_bilinear", nn.Upsample(size=(5, 7), mode="bilinear"), [((B, 2, 3, 4), FLOAT)], ("Resize",), tol=1e-4),
    Case("embedding", nn.Embedding(10, 4), [((B, 3), INT)], ("Gather",)),
    Case("embedding_bag_mean_2d", nn.EmbeddingBag(10, 4, mode="mean"), [((B, 3), INT)], ("MatMul",)),
    Case("embedding_bag_sum_weighted_padding", lambda x, w: F.embedding_bag(  # bags [0], [] (empty: zeros), [1..]
        x, BAG_TABLE, torch.tensor([0, 1, 1]), mode="sum", per_sample_weights=w, padding_idx=0), [((B,), INT), ((B,), FLOAT)]),
    Case("embedding_bag_last_offset", lambda x: F.embedding_bag(  # offsets 0, 2, ..., 2 * batch: one bag per row
        x.flatten(), BAG_TABLE, torch.arange(0, x.numel() + 1, 2), mode="mean", include_last_offset=True), [((B, 2), INT)]),
    Case("dropout_eval", nn.Sequential(nn.Dropout(0.5), nn.ReLU()), [((B, 3), FLOAT)]),
    # attention
    Case("sdpa_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [((B, 2, 5, 4), FLOAT)] * 3, ("Trilu",)),
    Case("sdpa_bool_mask", lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m > 0), [((B, 2, 5, 4), FLOAT), ((5, 5), FLOAT)]),
    Case("sdpa_float_mask_scale", lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m, scale=0.3), [((B, 2, 5, 4), FLOAT), ((5, 5), FLOAT)]),
    Case("sdpa_gqa", lambda q, k: F.scaled_dot_product_attention(q, k, k, enable_gqa=True), [((B, 4, 3, 4), FLOAT), ((B, 2, 3, 4), FLOAT)]),
    # recurrent
    Case("gru_bidirectional_batch_first", nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True), [((B, 4, 3), FLOAT)], ("GRU",), tol=1e-4),
    Case("lstm_no_bias", nn.LSTM(3, 4, bias=False), [((6, B, 3), FLOAT)], ("LSTM",), tol=1e-4),
]


def _module(case: Case) -> nn.Module:
    if isinstance(case.fn, nn.Module):
        return case.fn.eval()
    return Fn(case.fn, len(case.inputs)).eval()


def _example(inputs: list[tuple[tuple[Any, ...], str]], batch: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for shape, dtype in inputs:
        dims = [batch if d == B else d for d in shape]
        out.append(torch.randint(-3, 4, dims, generator=g) if dtype == INT else torch.randn(dims, generator=g))
    return out


def _outputs(result: Any) -> list[np.ndarray]:
    leaves, _ = torch.utils._pytree.tree_flatten(result)
    return [t.detach().numpy() for t in leaves]


def ort_session(model: ir.Model) -> Any:
    return ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_op_matches_torch_at_two_batch_sizes(case: Case) -> None:
    torch.manual_seed(0)
    module = _module(case)
    names = ["x", "y", "z"] if not isinstance(case.fn, nn.Module) else ["input"]
    specs = [InputSpec(n, shape, dtype) for n, (shape, dtype) in zip(names, case.inputs, strict=False)]
    model = load(module, format="torch", inputs=specs)
    ir.verify(model)
    onnx.checker.check_model(ir.to_proto(model), full_check=True)
    ops = {n.op_type for n in ir.traversal.RecursiveGraphIterator(model.graph)}
    assert set(case.expect) <= ops
    session = ort_session(model)
    for seed, batch in enumerate((2, 5)):
        args = [_in_range(case, i, a) for i, a in enumerate(_example(case.inputs, batch, seed))]
        with torch.no_grad():
            want = _outputs(module(*args))
        got = session.run(None, {s.name: a.numpy() for s, a in zip(specs, args, strict=True)})
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape, case.name
            assert g.dtype == w.dtype, case.name
            np.testing.assert_allclose(g, w, rtol=case.tol, atol=case.tol, err_msg=case.name)


def _in_range(case: Case, index: int, tensor: torch.Tensor) -> torch.Tensor:
    """Index inputs: non-negative and below the indexed dim."""
    if tensor.dtype != torch.int64 or index == 0 and not case.name.startswith("embedding"):
        return tensor
    if case.name.startswith("embedding"):
        return tensor.abs() % 10  # rows of a 10-row table (3 of them 0, the embedding_bag case's padding row)
    limit = { "index_two_leading": 2, "index_two_adjacent": 5, "scatter": 5, "scatter_add": 5, "gather_index_select": 5}.get(case.name, 3)
    return tensor.abs() % limit


def test_while_loop_becomes_loop() -> None:
    from torch._higher_order_ops.while_loop import while_loop

    class Doubling(nn.Module):
        def forward(self, x: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            def cond(i: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
                return i < n.sum()

            def body(i: torch.Tensor, acc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                return i + 1, acc * 2 + 1

            return while_loop(cond, body, (torch.zeros((), dtype=torch.int64), x))

    module = Doubling()
    args = (torch.randn(3, 4), torch.tensor([2, 1]))
    model = load(module, format="torch", inputs=args)
    assert "Loop" in {n.op_type for n in model.graph}
    session = ort_session(model)
    for steps in ([0, 0], [2, 1], [4, 0]):
        n = torch.tensor(steps)
        got = session.run(None, {"x": args[0].numpy(), "n": n.numpy()})
        want = _outputs(module(args[0], n))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-6)
