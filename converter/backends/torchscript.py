"""TorchScript back end: IR -> generated ``nn.Module`` source -> ``torch.jit.script`` -> ``.pt``.

The generated module is readable Python: weights and tensor constants are
buffers, and ``forward`` has one line per IR node, with a comment naming the node
and its source name: the torch call itself for hot ops with static attributes
(``torch.conv2d(x, self.w_conv1, ...)``), else a call of the kernel of
``kernels/torch`` registered for that op at the model's opset. Constant
subexpressions are computed at conversion time and Conv+BatchNormalization
folded (:mod:`~converter.backends.torchscript_codegen`). ``If`` becomes an
``if``/``else`` and ``Loop`` a ``while`` loop, inline
(:mod:`~converter.backends.torchscript_control`). The module is compiled with
``torch.jit.script`` (not traced), so symbolic dims and control flow stay
dynamic, and the compiled kernels travel inside the saved file: it loads with
plain ``torch.jit.load`` where crossgraph is not installed.

``script(model, freeze=True)`` also freezes the scripted module for CPU
inference in this process (weights become graph constants, torch folds and
prepacks them): faster on the CPU, but such a module no longer follows
``.to("cuda")``, and torch cannot load an ``optimize_for_inference`` module back
from a file, so saved files are never frozen. A loaded file can be frozen where
it runs: ``torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(p).eval()))``.

Example:
    >>> from converter.backends import torchscript
    >>> torchscript.save(model, pathlib.Path("model.pt"), emit_source=pathlib.Path("model_gen.py"))
    >>> m = torch.jit.load("model.pt"); m.input_names, m.output_names
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import sys
import tempfile
from typing import Any

import ir
from converter.backends.torchscript_codegen import CLASS, Writer, weight_tensor

__all__ = ["build_module", "generate_source", "save", "script", "weight_tensor"]


def generate_source(model: ir.Model) -> str:
    """The readable Python source of the ``nn.Module`` that runs ``model``.

    Raises:
        kernels.executor.MissingKernelsError: some ops have no torch kernel.
        NotImplementedError: the model uses an op the generator cannot inline (Scan).
    """
    return Writer(model).source()


def build_module(model: ir.Model, *, emit_source: pathlib.Path | None = None, freeze: bool = False) -> Any:
    """The generated module, instantiated with the model's weights (eager, not scripted).

    ``freeze``: generate the variant meant for freezing (see :func:`script`).
    """
    writer = Writer(model, freeze=freeze)
    source = writer.source()
    if emit_source is not None:
        pathlib.Path(emit_source).write_text(source)
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    module_name = f"crossgraph_generated_{digest}"
    # inspect.getsource (which torch.jit.script needs) reads the file, so it must exist.
    directory = pathlib.Path(tempfile.gettempdir()) / "crossgraph_generated"
    directory.mkdir(exist_ok=True)
    path = directory / f"{module_name}.py"
    if not path.is_file() or path.read_text() != source:
        # Another thread or process may be importing this very file: replace it whole, never truncate it.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{module_name}-", suffix=".py")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, CLASS)(writer.buffers)


def script(model: ir.Model, *, emit_source: pathlib.Path | None = None, freeze: bool = False) -> Any:
    """``model`` as a ``torch.jit.ScriptModule`` (see :func:`build_module`).

    With ``freeze``, the module is frozen and optimized for inference on the CPU
    (``torch.jit.freeze`` then ``torch.jit.optimize_for_inference``): buffers become
    constants of the graph, so that torch folds and prepacks them. Symbolic dims
    stay dynamic; ``input_names`` and ``output_names`` are kept; the module runs on
    the CPU only.
    """
    import torch

    scripted = torch.jit.script(build_module(model, emit_source=emit_source, freeze=freeze))
    if not freeze:
        return scripted
    frozen = torch.jit.freeze(scripted.eval(), preserved_attrs=["input_names", "output_names"])
    return torch.jit.optimize_for_inference(frozen)


def save(
    model: ir.Model,
    path: pathlib.Path,
    *,
    format: str = "torchscript",  # noqa: A002
    emit_source: pathlib.Path | None = None,
    **options: Any,
) -> None:
    """Write ``model`` as a TorchScript archive loadable with plain ``torch.jit.load``.

    Args:
        model: the IR model.
        path: the ``.pt`` file to write.
        format: only ``"torchscript"``.
        emit_source: also write the generated Python source there.
        options: none are recognised yet; passing one raises.

    Raises:
        ValueError: another format, or an unknown option.
        kernels.executor.MissingKernelsError: ops without a torch kernel.
    """
    import torch

    if format != "torchscript":
        raise ValueError(f"the TorchScript back end writes 'torchscript', not {format!r}")
    if options:
        raise ValueError(f"unknown TorchScript back-end option(s): {sorted(options)}")
    torch.jit.save(script(model, emit_source=emit_source), str(path))
