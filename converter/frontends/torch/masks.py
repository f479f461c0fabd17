"""nn.TransformerEncoder as eager inference computes it, made traceable while ``torch.export`` runs.

1. Causal-mask detection.
``nn.TransformerEncoder.forward`` given a ``mask`` but no ``is_causal`` calls
``torch.nn.modules.transformer._detect_is_causal_mask``, which compares the mask
with a generated causal one and branches on the result: a Python ``bool`` of
tensor data, which torch.export cannot trace ("Could not guard on
data-dependent expression"). The answer is only a hint: with ``is_causal=False``
every layer applies the given mask itself (``F.multi_head_attention_forward``
keeps ``attn_mask``), which computes the same numbers whatever the mask holds.
Within :func:`explicit_causal_masks` the detection answers ``is_causal is True``
without reading the mask; outside it, torch's own function is back in place.

2. Padded positions. In eval mode without gradients, an encoder built with
``enable_nested_tensor=True`` (the default) given only a ``src_key_padding_mask``
runs its layers on a nested tensor when the mask is left-aligned (padding at the
end of every row), and returns zeros at the padded positions, before its final
norm. torch.export always traces the padded path, which leaves other values
there. Within :func:`eager_padding_zeros` each such encoder's ``forward`` zeroes
the padded positions of the padded path's output, when every row is
left-aligned (checked in the graph, as torch checks it at run time), before the
norm; the valid positions are the same either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules import transformer


def _given_hint(mask: Any, is_causal: bool | None = None, size: int | None = None) -> bool:
    """The caller's ``is_causal``, never a comparison of the mask's values."""
    return is_causal is True


@contextlib.contextmanager
def explicit_causal_masks() -> Iterator[None]:
    """Within the block, ``nn.TransformerEncoder`` applies its ``mask`` as given (no data-dependent check)."""
    original = getattr(transformer, "_detect_is_causal_mask", None)
    if original is None:  # a torch without the detection: nothing to do
        yield
        return
    transformer._detect_is_causal_mask = _given_hint
    try:
        yield
    finally:
        transformer._detect_is_causal_mask = original


@contextlib.contextmanager
def eager_padding_zeros(module: nn.Module) -> Iterator[int]:
    """Within the block, encoders that eager torch runs on nested tensors give its zeros at padded positions.

    Only an instance attribute ``forward`` is added to each such ``nn.TransformerEncoder``
    and removed on exit. Yields how many were routed.
    """
    routed: list[nn.TransformerEncoder] = []
    try:
        if torch.backends.mha.get_fastpath_enabled() and not torch.is_autocast_enabled():
            for sub in module.modules():
                if isinstance(sub, nn.TransformerEncoder) and getattr(sub, "use_nested_tensor", False) \
                        and "forward" not in sub.__dict__:
                    sub.forward = _zeroing_forward(sub, type(sub).forward.__get__(sub))
                    routed.append(sub)
        yield len(routed)
    finally:
        for sub in routed:
            sub.__dict__.pop("forward", None)


def _zeroing_forward(encoder: nn.TransformerEncoder, original: Any) -> Any:
    def forward(src: torch.Tensor, mask: Any = None, src_key_padding_mask: Any = None, is_causal: Any = None) -> Any:
        if src_key_padding_mask is None or mask is not None or src.dim() != 3 or encoder.layers[0].training:
            return original(src, mask, src_key_padding_mask, is_causal)
        norm = encoder.norm
        encoder.norm = None  # the nested path pads with zeros before the norm
        try:
            out = original(src, mask, src_key_padding_mask, is_causal)
        finally:
            encoder.norm = norm
        padded = src_key_padding_mask if src_key_padding_mask.dtype == torch.bool else src_key_padding_mask != 0
        if getattr(encoder, "mask_check", True):  # eager takes the nested path only for left-aligned masks
            kept = (~padded).to(torch.int8)
            padded = padded & (kept[:, 1:] <= kept[:, :-1]).all()
        out = out.masked_fill(padded.unsqueeze(-1), 0.0)
        return norm(out) if norm is not None else out

    return forward
