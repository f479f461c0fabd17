"""Hand-written modules the robustness sweep found failing (``bench/sweep_torch_models.py``).

Each converted model is run in onnxruntime and compared with the module's own
outputs, at more than one size of its dynamic dims; the refusals are checked
for what they name.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import ir  # noqa: E402
from converter.errors import NotYetSupportedError  # noqa: E402
from converter.frontends.torch import load  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402


def _run(model: ir.Model, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in feeds.items()})


def _assert_close(got: list[np.ndarray], want: object, tol: float = 1e-5) -> None:
    leaves, _ = torch.utils._pytree.tree_flatten(want)
    assert len(got) == len(leaves)
    for g, w in zip(got, leaves, strict=True):
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=tol, atol=tol)


class MaskedScatter(nn.Module):
    def forward(self, x: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = x.masked_scatter(x > 0, source)  # as many source elements as x has
        columns = x.masked_scatter((x[:1] < 0.3), source * 2)  # a mask broadcast over the batch
        return rows, columns


def test_masked_scatter_fills_true_positions_in_order() -> None:
    module = MaskedScatter()
    model = load(module, inputs=[InputSpec("x", ("batch", 5)), InputSpec("source", ("batch", 5))])
    g = torch.Generator().manual_seed(0)
    for batch in (2, 6):
        x, source = torch.randn(batch, 5, generator=g), torch.randn(batch, 5, generator=g)
        _assert_close(_run(model, {"x": x, "source": source}), module(x, source))


class CausalEncoder(nn.Module):
    """A causal mask given without ``is_causal``: torch compares its values (a data-dependent branch)."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.encoder(x, mask=mask, src_key_padding_mask=~keep)


def test_transformer_encoder_mask_without_is_causal_stays_dynamic() -> None:
    from torch.nn.modules import transformer

    detect = transformer._detect_is_causal_mask
    torch.manual_seed(0)
    module = CausalEncoder().eval()
    specs = [InputSpec("x", ("batch", "seq", 8)), InputSpec("keep", ("batch", "seq"), "bool")]
    model = load(module, inputs=specs)
    assert transformer._detect_is_causal_mask is detect  # torch's own function is back
    assert [str(d) for d in model.graph.inputs[0].shape] == ["batch", "seq", "8"]
    g = torch.Generator().manual_seed(1)
    for batch, seq in ((2, 3), (3, 7)):
        x = torch.randn(batch, seq, 8, generator=g)
        keep = torch.rand(batch, seq, generator=g) > 0.3
        keep[:, 0] = True  # no fully masked row (NaN in torch)
        with torch.no_grad():
            want = module(x, keep)
        _assert_close(_run(model, {"x": x, "keep": keep}), want, tol=1e-4)


class Pooled(NamedTuple):
    hidden: torch.Tensor
    pooled: torch.Tensor


class TupleAndKeyword(nn.Module):
    def forward(self, pair: tuple[torch.Tensor, torch.Tensor], *, bias: torch.Tensor) -> Pooled:
        hidden = pair[0] * 2 + pair[1] + bias
        return Pooled(hidden, hidden.mean(0))


def test_nested_inputs_and_named_tuple_outputs_are_named_by_their_paths() -> None:
    module = TupleAndKeyword()
    a, b, bias = torch.randn(2, 3), torch.randn(2, 3), torch.randn(3)
    model = load(module, inputs={"pair": (a, b), "bias": bias})
    assert [v.name for v in model.graph.inputs] == ["pair_0", "pair_1", "bias"]
    assert [v.name for v in model.graph.outputs] == ["hidden", "pooled"]
    _assert_close(_run(model, {"pair_0": a, "pair_1": b, "bias": bias}), module((a, b), bias=bias))


class Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("total", torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.total.add_(x.sum(0))
        return x * self.calls


def test_buffer_updated_in_forward_is_refused_by_name() -> None:
    with pytest.raises(NotYetSupportedError, match=r"buffer\(s\) calls, total in place"):
        load(Counter(), inputs=[InputSpec("x", ("batch", 4))])


def test_train_mode_module_converts_as_eval_with_a_warning() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.BatchNorm1d(8)).train()
    module[2].running_mean.normal_()  # eval must use these, not the batch's statistics
    with pytest.warns(UserWarning, match=r"^1 \(Dropout\), 2 \(BatchNorm1d\) in train\(\) mode: converted as in eval\(\) mode"):
        model = load(module, inputs=[InputSpec("x", ("batch", 4))])
    assert module.training  # the user's mode is restored
    x = torch.randn(3, 4)
    with torch.no_grad():
        want = module.eval()(x)
    _assert_close(_run(model, {"x": x}), want)


def test_train_mode_without_dropout_or_batch_norm_converts_silently() -> None:
    module = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.0), nn.LayerNorm(2))  # train mode, as built
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(module, inputs=[InputSpec("x", ("batch", 4))])
    assert not [w for w in caught if "train()" in str(w.message)]


class Bicubic(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)


def test_bicubic_scale_factor_keeps_height_and_width_dynamic() -> None:
    module = Bicubic()
    model = load(module, inputs=[InputSpec("x", ("batch", 2, "height", "width"))])
    assert [str(d) for d in model.graph.inputs[0].shape] == ["batch", "2", "height", "width"]
    g = torch.Generator().manual_seed(0)
    for shape in ((1, 2, 3, 5), (2, 2, 6, 4)):
        x = torch.randn(shape, generator=g)
        _assert_close(_run(model, {"x": x}), module(x), tol=1e-4)


class ValueBranch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x


def test_python_branch_on_tensor_values_is_named_with_its_line() -> None:
    from converter.errors import InputError

    with pytest.raises(InputError, match=r"branches in Python on a tensor's values \(.*test_torch_modules.py:\d+: "
                                         r"if x.sum\(\) > 0:\).*torch.where"):
        load(ValueBranch(), inputs=[InputSpec("x", ("batch", 4))])


class ScaleMeetsSize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bicubic") + F.interpolate(x, scale_factor=2, mode="nearest")


def test_sizes_computed_two_ways_say_how_to_compute_them() -> None:
    from converter.errors import InputError

    with pytest.raises(InputError, match=r"sizes computed in two ways .* compute both the same way"):
        load(ScaleMeetsSize(), inputs=[InputSpec("x", ("batch", 2, "height", "width"))])


class NestedEncoder(nn.Module):
    """nn.TransformerEncoder with its default nested tensors and a final norm."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=pad)


def test_encoder_padded_positions_match_eager_nested_tensors() -> None:
    torch.manual_seed(0)
    module = NestedEncoder().eval()
    model = load(module, inputs=[InputSpec("x", ("batch", "seq", 8)), InputSpec("pad", ("batch", "seq"), "bool")])
    assert "forward" not in module.encoder.__dict__  # the routing is undone
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))
    aligned = torch.tensor([[False, False, False, True, True], [False] * 5])  # eager: nested, zeros then norm
    scattered = torch.tensor([[False, True, False, False, True], [False] * 5])  # eager: the padded path
    for pad in (aligned, scattered):
        with torch.no_grad():
            want = module(x, pad)
        _assert_close(_run(model, {"x": x, "pad": pad}), want, tol=1e-4)
    with torch.no_grad():
        padded_row = module(x, aligned)[0, 3:]
    assert torch.allclose(padded_row, module.encoder.norm(torch.zeros(8)).expand(2, 8))  # what the test relies on
