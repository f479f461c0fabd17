"""Sequence and Optional ops.

An ONNX sequence is a ``list[Tensor]`` and an optional is ``Optional[Tensor]``
(``None`` when empty), in the executor and in generated TorchScript alike.
Positions may be negative (counted from the end). The kernels return new lists:
values are immutable in ONNX, and a sequence may be used twice.
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch._util import norm_axis


def _position(t: Tensor | None, length: int, default: int) -> int:
    if t is None:
        return default
    p = int(t.item())
    return p + length if p < 0 else p


@TORCH.register("SequenceEmpty", since=11)
def sequence_empty(dtype: int = 1) -> list[Tensor]:
    out: list[Tensor] = []
    return out


@TORCH.register("SequenceConstruct", since=11)
def sequence_construct(inputs: list[Tensor]) -> list[Tensor]:
    return list(inputs)


@TORCH.register("SequenceInsert", since=11)
def sequence_insert(
    input_sequence: list[Tensor], tensor: Tensor, position: Tensor | None = None
) -> list[Tensor]:
    out = list(input_sequence)
    out.insert(_position(position, len(out), len(out)), tensor)
    return out


@TORCH.register("SequenceAt", since=11)
def sequence_at(input_sequence: list[Tensor], position: Tensor) -> Tensor:
    return input_sequence[_position(position, len(input_sequence), 0)]


@TORCH.register("SequenceErase", since=11)
def sequence_erase(input_sequence: list[Tensor], position: Tensor | None = None) -> list[Tensor]:
    out = list(input_sequence)
    del out[_position(position, len(out), len(out) - 1)]
    return out


@TORCH.register("SequenceLength", since=11)
def sequence_length(input_sequence: list[Tensor]) -> Tensor:
    return torch.tensor(len(input_sequence), dtype=torch.int64)


@TORCH.register("ConcatFromSequence", since=11)
def concat_from_sequence(input_sequence: list[Tensor], axis: int = 0, new_axis: int = 0) -> Tensor:
    if new_axis != 0:
        return torch.stack(input_sequence, norm_axis(axis, input_sequence[0].dim() + 1))
    return torch.cat(input_sequence, norm_axis(axis, input_sequence[0].dim()))


@TORCH.register("SplitToSequence", since=11)
def split_to_sequence(
    input: Tensor, split: Tensor | None = None, axis: int = 0, keepdims: int = 1
) -> list[Tensor]:  # noqa: A002
    axis = norm_axis(axis, input.dim())
    if split is None:
        parts = list(torch.split(input, 1, axis))
        if keepdims == 0:
            return [p.squeeze(axis) for p in parts]
        return parts
    if split.numel() == 1:  # a chunk length (the last chunk may be shorter)
        return list(torch.split(input, int(split.item()), axis))
    sizes: list[int] = split.to(torch.int64).tolist()
    return list(torch.split(input, sizes, axis))


@TORCH.register("Optional", since=15)
def optional(input: Tensor | None = None, type: int = 0) -> Tensor | None:  # noqa: A002
    return input


@TORCH.register("OptionalHasElement", since=15)
def optional_has_element(input: Tensor | None = None) -> Tensor:  # noqa: A002
    return torch.tensor(input is not None)


@TORCH.register("OptionalGetElement", since=15)
def optional_get_element(input: Tensor | None) -> Tensor:  # noqa: A002
    if input is None:
        raise RuntimeError("OptionalGetElement of an empty optional")
    return input
