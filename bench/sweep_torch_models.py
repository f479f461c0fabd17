"""The hand-written PyTorch group of the robustness sweep (``bench/sweep_models.py``, rows ``torch_*``).

Small ``nn.Module`` classes with random weights, written the way user code is:
attention modules with padding and causal masks, the transformer encoder and
decoder (the encoder's eval-mode fast path), resampling (grid_sample,
interpolate, fold/unfold, pixel shuffle), convolutions and normalizations,
scans, gathers and scatters, sorting, einsum, FFT, ``torch.cond``, nested
inputs and outputs, buffers mutated in ``forward``, train mode, and integer,
boolean, float64 and half-precision inputs. Each builder imports torch lazily
and returns ``(module, inputs)``: ``inputs`` are spec strings, or example
tensors where a spec cannot say what ``forward`` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Vocabulary size of the embedding modules.
VOCAB = 100


def torch_module(factory: Callable[[], Any], train: bool = False) -> Callable[[], Any]:
    """A builder for a hand-written torch module (the factory defines the class lazily), seeded."""

    def build() -> Any:
        import torch

        torch.manual_seed(0)
        return factory().train(train)

    return build


def mha() -> Any:
    """nn.MultiheadAttention batch-first with a key padding mask, and sequence-first with a causal float mask."""
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.MultiheadAttention(16, 4, batch_first=True)
            self.second = nn.MultiheadAttention(16, 2, batch_first=False, kdim=16, vdim=16)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            seq = x.shape[1]
            padding = x[..., 0] > 1.0  # never masks the first position: no fully masked row
            padding = torch.cat([torch.zeros_like(padding[:, :1]), padding[:, 1:]], dim=1)
            y, weights = self.first(x, x, x, key_padding_mask=padding)
            causal = torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)
            z, _ = self.second(y.transpose(0, 1), y.transpose(0, 1), y.transpose(0, 1), attn_mask=causal,
                               need_weights=False)
            return z.transpose(0, 1), weights

    return Attention()


def transformer_encoder() -> Any:
    """nn.TransformerEncoder (two layers, batch first) with a causal mask and a key padding mask."""
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True, dropout=0.1)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seq = x.shape[1]
            causal = nn.Transformer.generate_square_subsequent_mask(seq)
            padding = torch.zeros(x.shape[:2], dtype=torch.bool)
            return self.encoder(x, mask=causal, src_key_padding_mask=padding)

    return Encoder()


def transformer_encoder_fast_path() -> Any:
    """Eval-mode encoders with only a padding mask, which eager torch runs on its fused fast path:
    nn.TransformerEncoder with its default nested tensors, and a norm-first layer on its own."""
    import torch
    from torch import nn

    class FastEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2)  # enable_nested_tensor=True
            self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True, norm_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            lengths = (x[..., 0] > 0).sum(1).clamp(min=1)  # padding at the end of each row (left-aligned)
            padding = torch.arange(x.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
            return self.layer(self.encoder(x, src_key_padding_mask=padding), src_key_padding_mask=padding)

    return FastEncoder()


def transformer_decoder() -> Any:
    """nn.TransformerDecoder (two layers, sequence first) with a causal target mask and a memory padding mask."""
    import torch
    from torch import nn

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerDecoderLayer(16, 2, dim_feedforward=32, activation="gelu")
            self.decoder = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(16))

        def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
            causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[0])
            padding = torch.zeros(memory.shape[1], memory.shape[0], dtype=torch.bool)
            return self.decoder(tgt, memory, tgt_mask=causal, memory_key_padding_mask=padding, tgt_is_causal=True)

    return Decoder()


def sdpa() -> Any:
    """F.scaled_dot_product_attention causal, and with a boolean mask built from a dynamic length."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Sdpa(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            seq = q.shape[2]
            idx = torch.arange(seq)
            banded = (idx[:, None] - idx[None, :]).abs() <= 2  # bool mask, a band around the diagonal
            masked = F.scaled_dot_product_attention(q, k, v, attn_mask=banded, scale=0.3)
            return causal + masked

    return Sdpa()


def resample() -> Any:
    """F.affine_grid + F.grid_sample (bilinear/nearest, zeros/border/reflection, both align_corners)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Resample(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.theta = nn.Linear(3, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            theta = self.theta(x.mean(dim=(2, 3))).reshape(-1, 2, 3) * 0.3 + torch.eye(2, 3)
            grid = F.affine_grid(theta, [x.shape[0], 3, 12, 12], align_corners=False)
            a = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            b = F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=True)
            c = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
            return torch.cat([a, b, c], dim=1)

    return Resample()


def patches() -> Any:
    """F.unfold / F.fold round trip and pixel_shuffle / pixel_unshuffle."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Patches(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            cols = F.unfold(x, kernel_size=3, padding=1, stride=2)  # b x 4*9 x 16
            back = F.fold(cols * 0.5, output_size=(8, 8), kernel_size=3, padding=1, stride=2)
            shuffled = F.pixel_shuffle(F.pixel_unshuffle(x, 2) * 2.0, 2)
            return back, shuffled + x

    return Patches()


def interpolate() -> Any:
    """F.interpolate: nearest, bilinear (both align_corners), bicubic; scale factors and sizes; dynamic H and W."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Interpolate(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            # NOTE: torch.export cannot prove that sizes computed differently are equal (bicubic's
            # trunc(2.0 * float(h)), nearest's 2 * h, size=(2 * h, ...)): such outputs are not added together.
            nearest = F.interpolate(x, scale_factor=2, mode="nearest")
            linear = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            cubic = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
            corners = F.interpolate(x, size=(x.shape[2] * 2, x.shape[3] * 2), mode="bilinear", align_corners=True)
            fixed = F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False)
            return nearest + linear, cubic, corners, fixed

    return Interpolate()


def convolutions() -> Any:
    """nn.Conv1d with groups and dilation, nn.ConvTranspose2d with output_padding and groups."""
    import torch
    from torch import nn

    class Convs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1d = nn.Conv1d(8, 12, 3, padding=2, dilation=2, groups=4)
            self.deconv = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
            self.deconv1d = nn.ConvTranspose1d(12, 4, 4, stride=3, output_padding=2, dilation=1)

        def forward(self, signal: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.deconv1d(self.conv1d(signal)), self.deconv(image)

    return Convs()


def norms() -> Any:
    """InstanceNorm2d (affine and not), GroupNorm, LayerNorm over three dims, RMSNorm."""
    import torch
    from torch import nn

    class Norms(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.instance = nn.InstanceNorm2d(6, affine=True)
            self.plain = nn.InstanceNorm2d(6)
            self.group = nn.GroupNorm(3, 6)
            self.layer = nn.LayerNorm([6, 8, 8])
            self.rms = nn.RMSNorm(8, eps=1e-5)
            self.rms2 = nn.RMSNorm([8, 8])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.instance(x) + self.plain(x) + self.group(x) + self.layer(x) + self.rms(x) + self.rms2(x)

    return Norms()


def activations() -> Any:
    """nn.PReLU (per channel and shared), Hardswish, Mish, SiLU, GELU(approximate='tanh')."""
    import torch
    from torch import nn

    class Activations(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prelu = nn.PReLU(6, init=0.1)
            self.shared = nn.PReLU()
            self.rest = nn.ModuleList([nn.Hardswish(), nn.Mish(), nn.SiLU(), nn.GELU(approximate="tanh")])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.prelu(x) + self.shared(x)
            for act in self.rest:
                y = y + act(x)
            return y

    return Activations()


def scans() -> Any:
    """cumsum, cumprod, flip, roll, diff, tril, triu over dynamic sizes."""
    import torch
    from torch import nn

    class Scans(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            a = torch.cumsum(x, dim=1) + torch.cumprod(x * 0.5 + 1, dim=2).flip(-1)
            b = torch.roll(x, shifts=2, dims=1) + torch.roll(x, shifts=(-1, 1), dims=(1, 2))
            c = torch.diff(x, dim=1)
            d = torch.tril(x, diagonal=-1) + torch.triu(x, diagonal=1) * 2
            return a, b, c, d

    return Scans()


def gather_scatter() -> Any:
    """gather, scatter, scatter_add, index_select, index_add, masked_scatter."""
    import torch
    from torch import nn

    class GatherScatter(nn.Module):
        def forward(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
            idx = idx.clamp(0, x.shape[1] - 1)  # b x 4 positions along dim 1
            picked = torch.gather(x, 1, idx)
            base = torch.zeros_like(x)
            scattered = base.scatter(1, idx, picked * 2)
            summed = base.scatter_add(1, idx, picked)
            rows = torch.index_select(x, 1, torch.tensor([0, 2, 2, 1]))
            added = x.index_add(1, torch.tensor([0, 1, 0]), x[:, :3] * 0.5)
            filled = x.masked_scatter(x > 0, torch.ones_like(x) * 3)
            return picked, scattered, summed, rows, added, filled

    return GatherScatter()


def sorting() -> Any:
    """sort, argsort, topk, kthvalue, median (per row and overall)."""
    import torch
    from torch import nn

    class Sorting(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            values, indices = torch.sort(x, dim=-1, descending=True)
            order = torch.argsort(x, dim=1)
            top, top_i = torch.topk(x, 3, dim=-1, largest=False)
            kth, kth_i = torch.kthvalue(x, 2, dim=-1)
            med, med_i = torch.median(x, dim=-1)
            return values, indices, order, top, top_i, kth, kth_i, med, med_i, x - torch.median(x)

    return Sorting()


def masking_einsum() -> Any:
    """Boolean masking with torch.where (no nonzero), einsum of three and four operands."""
    import torch
    from torch import nn

    class MaskEinsum(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.randn(8, 8))
            self.b = nn.Parameter(torch.randn(8, 4))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            keep = x.abs() > 0.5
            masked = torch.where(keep, x, torch.zeros_like(x))
            mean = masked.sum(1) / keep.sum(1).clamp(min=1)
            three = torch.einsum("bsd,de,bte->bst", x, self.a, x)
            four = torch.einsum("bsd,de,ef,bsf->bs", x, self.a, self.b, x[..., :4])
            return mean, three.sum(-1) + four

    return MaskEinsum()


def fft() -> Any:
    """torch.fft.rfft magnitude and an irfft round trip."""
    import torch
    from torch import nn

    class Spectrum(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            spec = torch.fft.rfft(x, dim=-1)
            return spec.abs(), torch.fft.irfft(spec * 0.5, n=x.shape[-1], dim=-1)

    return Spectrum()


def cond() -> Any:
    """torch.cond on a data-dependent predicate, with a captured parameter."""
    import torch
    from torch import nn

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def hot(t: torch.Tensor) -> torch.Tensor:
                return torch.relu(t @ self.w)

            def cold(t: torch.Tensor) -> torch.Tensor:
                return torch.tanh(t) - 1.0

            return torch.cond(x.sum() > 0, hot, cold, (x,))

    return Branchy()


def dict_io() -> Any:
    """forward takes a dict and returns a dict."""
    import torch
    from torch import nn

    class DictIO(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 4)

        def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            h = self.proj(batch["features"]) * batch["scale"]
            return {"logits": h, "probs": h.softmax(-1)}

    return DictIO()


def dict_io_inputs() -> list[Any]:
    import torch

    return [{"features": torch.randn(2, 5, 8), "scale": torch.rand(2, 5, 1)}]


def tuple_kwargs() -> Any:
    """forward takes a tuple and a keyword argument, returns a NamedTuple."""
    from typing import NamedTuple

    import torch
    from torch import nn

    class Out(NamedTuple):
        hidden: torch.Tensor
        pooled: torch.Tensor

    class TupleKw(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 8)

        def forward(self, pair: tuple[torch.Tensor, torch.Tensor], *, bias: torch.Tensor) -> Out:
            h = self.proj(pair[0] + pair[1]) + bias
            return Out(h, h.mean(1))

    return TupleKw()


def tuple_kwargs_inputs() -> dict[str, Any]:
    import torch

    return {"pair": (torch.randn(2, 5, 8), torch.randn(2, 5, 8)), "bias": torch.randn(8)}


def buffer_counter() -> Any:
    """A registered buffer updated in forward (a call counter and a running mean)."""
    import torch
    from torch import nn

    class Counter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
            self.register_buffer("running", torch.zeros(8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            self.running.mul_(0.9).add_(x.mean(0) * 0.1)
            return x - self.running

    return Counter()


def dropout_train() -> Any:
    """A module left in train() mode: Dropout is random in torch."""
    from torch import nn

    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4))


def int_embedding() -> Any:
    """Embedding of int ids plus learned positions from arange over a dynamic length."""
    import torch
    from torch import nn

    class Embed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, 16, padding_idx=0)
            self.positions = nn.Embedding(64, 16)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
            h = self.tokens(ids) + self.positions(pos)
            return h * (ids != 0).unsqueeze(-1)

    return Embed()


def bool_input() -> Any:
    """A boolean mask input (masked mean, logical ops)."""
    import torch
    from torch import nn

    class BoolIn(nn.Module):
        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            kept = torch.where(mask.unsqueeze(-1), x, 0.0)
            count = mask.sum(1, keepdim=True).clamp(min=1)
            return kept.sum(1) / count, mask.logical_not() | (x.sum(-1) > 0)

    return BoolIn()


def typed_mlp(dtype: str) -> Callable[[], Any]:
    """A factory for a small MLP with LayerNorm and GELU in ``dtype``.

    float64 uses the tanh GELU: onnxruntime has no double ``Erf`` kernel, which exact GELU needs.
    """

    def factory() -> Any:
        import torch
        from torch import nn

        gelu = nn.GELU(approximate="tanh" if dtype == "float64" else "none")
        model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), gelu, nn.Linear(16, 4), nn.Softmax(-1))
        return model.to(getattr(torch, dtype))

    return factory


def cases(case: Callable[..., Any]) -> list[Any]:
    """The group's sweep cases, built with the sweep's ``Case(name, build, inputs, vision, refusal=...)``."""
    seq = ["x:batch x seq x 16"]
    return [
        case("torch_mha", torch_module(mha), seq),
        case("torch_transformer_encoder", torch_module(transformer_encoder), seq),
        case("torch_encoder_fast_path", torch_module(transformer_encoder_fast_path), seq),
        case("torch_transformer_decoder", torch_module(transformer_decoder),
             ["tgt:tgt_len x batch x 16", "memory:mem_len x batch x 16"]),
        case("torch_sdpa", torch_module(sdpa), [f"{n}:batch x 2 x seq x 8" for n in "qkv"]),
        case("torch_grid_sample", torch_module(resample), ["x:batch x 3 x 10 x 10"], True),
        case("torch_fold_shuffle", torch_module(patches), ["x:batch x 4 x 8 x 8"], True),
        # dynamic height and width: no TFLite row (TFLite needs them fixed, and says so)
        case("torch_interpolate", torch_module(interpolate), ["x:batch x 3 x height x width"]),
        case("torch_convolutions", torch_module(convolutions), ["signal:batch x 8 x length", "image:batch x 6 x 5 x 5"]),
        case("torch_norms", torch_module(norms), ["x:batch x 6 x 8 x 8"], True),
        case("torch_activations", torch_module(activations), ["x:batch x 6 x 4 x 4"], True),
        case("torch_scans", torch_module(scans), ["x:batch x rows x cols"]),
        case("torch_gather_scatter", torch_module(gather_scatter), ["x:batch x 6 x 5", "idx:batch x 4 x 5:int64"]),
        case("torch_sorting", torch_module(sorting), ["x:batch x 7"]),
        case("torch_mask_einsum", torch_module(masking_einsum), ["x:batch x seq x 8"]),
        case("torch_fft", torch_module(fft), ["x:batch x 16"], refusal=r"UnsupportedOpsError: .*aten::_fft_r2c"),
        case("torch_cond", torch_module(cond), ["x:batch x 8"]),
        case("torch_dict_io", torch_module(dict_io), dict_io_inputs),
        case("torch_tuple_kwargs", torch_module(tuple_kwargs), tuple_kwargs_inputs),
        case("torch_buffer_counter", torch_module(buffer_counter), ["x:batch x 8"],
             refusal=r"NotYetSupportedError: forward updates buffer\(s\) calls, running in place"),
        case("torch_dropout_train", torch_module(dropout_train, train=True), ["x:batch x 8"]),
        case("torch_int_embedding", torch_module(int_embedding), ["ids:batch x seq:int64"]),
        case("torch_bool_input", torch_module(bool_input), ["x:batch x 5 x 4", "mask:batch x 5:bool"]),
        case("torch_float64", torch_module(typed_mlp("float64")), ["x:batch x 8:float64"]),
        case("torch_float16", torch_module(typed_mlp("float16")), ["x:batch x 8:float16"]),
        case("torch_bfloat16", torch_module(typed_mlp("bfloat16")), ["x:batch x 8:bfloat16"]),
    ]
