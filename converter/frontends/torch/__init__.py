"""PyTorch front end: ``torch.export`` to core ATen, translated natively op by op into IR ops.

Not a wrapper around ``torch.onnx.export``: the program is exported (or loaded, or
converted from TorchScript), decomposed to core ATen, and every ATen op is
translated by one registered function (:data:`converter.frontends.torch.ops.ATEN`)
into ONNX-semantics IR nodes at ``ir.DEFAULT_OPSET``. ``torch.cond`` and
``while_loop`` become If and Loop. Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

import ir


def load(source: Any, *, format: str = "torch", inputs: Any = None, **options: Any) -> ir.Model:
    """Convert a PyTorch model into an IR model.

    Args:
        source: for ``format="torch"``: an ``nn.Module``, ``ExportedProgram`` or
            ``ScriptModule`` object, or ``"package.module:function"`` naming a
            factory that returns one; for ``"exported_program"``: a ``.pt2`` path
            (``torch.export.save``); for ``"torchscript"``: a ``.pt``/``.pth``
            path (``torch.jit.save``, scripted or traced).
        format: ``"torch"``, ``"exported_program"`` or ``"torchscript"``.
        inputs: example inputs (a tuple/list of tensors, or a dict name -> tensor),
            or a list of ``converter.inputs.InputSpec``; symbol names in spec
            shapes become dynamic dims (one ``torch.export.Dim`` per name, with
            the spec's range: ``seq=..512`` is ``Dim("seq", min=1, max=512)``).
            Required for modules and TorchScript; optional for ``.pt2``, where
            spec symbols name the file's dynamic dims.
        options: ``strict`` (default False) for ``torch.export``;
            ``dynamic_shapes`` (torch's form) to use with example tensors.

    Returns:
        A verified model whose inputs are named after ``forward``'s arguments and
        whose outputs are ``output``, ``output_<i>``, or a returned dict's keys.
        Dynamic dims are named by the input specs, else by the ``Dim`` names
        torch.export kept (a live program, or a ``.pt2`` saved with its
        ``dynamic_shapes`` record), else ``batch``/``<input>_<axis>``; their
        ranges are in the model's metadata (``converter.inputs.model_symbol_bounds``).
        Weights are initializers wrapping the torch tensors, not copies (except
        LSTM/GRU/RNN weights, repacked into ONNX's gate order). Plain
        ``nn.LSTM``/``GRU``/``RNN`` submodules keep a dynamic sequence length
        (see :mod:`~converter.frontends.torch.recurrent`).

    Raises:
        InputError: a missing or corrupt file, missing inputs, or a failed export
            (when torch.export suggests a range or a size for a dim, the message
            gives the ``--input`` that applies it).
        UnsupportedOpsError: ops with no translation, every one listed.

    Example:
        >>> import torch
        >>> from converter.inputs import InputSpec
        >>> m = load(torch.nn.Linear(4, 2), inputs=[InputSpec("x", ("batch", 4))])
        >>> [str(d) for d in m.graph.inputs[0].shape]
        ['batch', '4']
    """
    from converter.frontends.torch.export import exported_program
    from converter.frontends.torch.translate import Translator
    from converter.inputs import set_model_symbol_bounds

    program = exported_program(source, format=format, inputs=inputs, **options)
    model = Translator(program.ep, program.input_names, program.symbols, program.output_names).run()
    set_model_symbol_bounds(model, program.bounds)
    ir.verify(model)
    return model


__all__ = ["load"]
