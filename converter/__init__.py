"""crossgraph: convert models between TensorFlow, PyTorch and ONNX, optimize them, prove parity.

Public API::

    converter.convert(source, destination, *, source_format=None, target_format=None,
                      inputs=None, opset=None, optimize=2, check=True) -> ConversionResult
    converter.load(source, *, format=None, inputs=None) -> ir.Model
    converter.save(model, destination, *, format=None, opset=None) -> pathlib.Path
    converter.optimize(model, level=2) -> PassReport
    converter.validate(source, converted, *, inputs=None, rtol=None, atol=None, device="cpu") -> ParityReport

Importing ``converter`` does not import TensorFlow or PyTorch; the front end or
back end that needs a framework imports it when used.
"""

from converter.api import ConversionResult, convert, load, optimize, save, validate
from converter.errors import (
    CrossgraphError,
    InputError,
    NotYetSupportedError,
    ParityError,
    UnsupportedOpsError,
)
from converter.inputs import InputSpec

__version__ = "0.1.0"

__all__ = [
    "convert",
    "load",
    "save",
    "optimize",
    "validate",
    "ConversionResult",
    "InputSpec",
    "CrossgraphError",
    "InputError",
    "NotYetSupportedError",
    "ParityError",
    "UnsupportedOpsError",
]
