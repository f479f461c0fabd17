"""ONNX back end: IR -> ``.onnx`` through onnx_ir's serde.

- Weights go to an external data file (``<name>.data`` beside the model) when the
  model already had external data or when the total would pass protobuf's 2 GB
  limit; otherwise they are stored inline. onnx_ir streams external tensors from
  their memory-mapped source, so saving never needs the whole model in RAM.
- ``opset=N`` converts the default-domain opset with ``onnx.version_converter``
  and fails with a clear error where it cannot.
"""

from __future__ import annotations

import pathlib
from typing import Any

import ir
from converter.errors import InputError

#: Above this many bytes of weights, they go to external data (protobuf caps a message at 2 GB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "onnx",
    opset: int | None = None,
    external_data: bool | None = None,
    **options: Any,
) -> None:
    """Write ``model`` to ``path`` as ONNX.

    Args:
        model: the model; not modified (an opset conversion works on a copy).
        path: the ``.onnx`` file to write.
        opset: the default-domain opset to convert to; ``None`` keeps the model's.
        external_data: force (True) or forbid (False) external data; ``None`` decides
            by size and by whether the model already had external data.

    Raises:
        InputError: the opset conversion is impossible, or the model is too large
            for a single file and ``external_data=False`` was given.
    """
    path = pathlib.Path(path)
    if opset is not None and opset != ir.model_opset(model):
        model = convert_opset(model, opset)
    use_external = _needs_external_data(model) if external_data is None else external_data
    if external_data is False and _weight_bytes(model) > EXTERNAL_DATA_THRESHOLD:
        raise InputError("the model's weights pass protobuf's 2 GB limit", "allow external data")
    if use_external:
        ir.save(model, path, external_data=path.name + ".data", size_threshold_bytes=1024)
    else:
        ir.save(model, path)


def convert_opset(model: ir.Model, opset: int) -> ir.Model:
    """A copy of ``model`` at default-domain ``opset``, via ``onnx.version_converter``.

    Raises:
        InputError: onnx's converter cannot do it; names the source and target opsets.
    """
    import onnx.version_converter

    current = ir.model_opset(model)
    latest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= latest:
        raise InputError(f"cannot convert to opset {opset}", f"choose an opset between 7 and {latest}")
    proto = ir.to_proto(model)
    try:
        converted = onnx.version_converter.convert_version(proto, opset)
    except Exception as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        reason = reason.split("Assertion `false` failed:")[-1].strip()
        raise InputError(
            f"cannot convert the model from opset {current} to opset {opset}: {reason}",
            f"keep the model's opset ({current}) or choose another with --opset",
        ) from None
    return ir.serde.deserialize_model(converted)


def _weight_bytes(model: ir.Model) -> int:
    total = 0
    for graph in model.graphs():
        for value in graph.initializers.values():
            if value.const_value is not None:
                total += value.const_value.nbytes
    return total


def _needs_external_data(model: ir.Model) -> bool:
    for graph in model.graphs():
        for value in graph.initializers.values():
            if isinstance(value.const_value, ir.ExternalTensor):
                return True
    return _weight_bytes(model) > EXTERNAL_DATA_THRESHOLD
