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
            shapes become dynamic dims (one ``torch.export.Dim`` per name).
            Required for modules and TorchScript; optional for ``.pt2``.
        options: ``strict`` (default False) for ``torch.export``;
            ``dynamic_shapes`` (torch's form) to use with example tensors.

    Returns:
        A verified model whose inputs are named after ``forward``'s arguments and
        whose outputs are ``output``, ``output_<i>``, or a returned dict's keys.
        Weights are initializers wrapping the torch tensors, not copies.

    Raises:
        InputError: a missing or corrupt file, missing inputs, or a failed export.
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

    program = exported_program(source, format=format, inputs=inputs, **options)
    model = Translator(program.ep, program.input_names, program.symbols, program.output_names).run()
    ir.verify(model)
    return model


__all__ = ["load"]
