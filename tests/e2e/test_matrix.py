"""The conversion matrix, end to end: every fixture model to every target format.

Each fixture under ``fixtures/models/{onnx,torch,tf}`` is converted through the
public API (``converter.convert(..., check=True)``) to ONNX, TorchScript and a
TF SavedModel. The outside truth is the source model run by its own framework
(onnxruntime, torch, TensorFlow/Keras) against the result in its own runtime:

- the conversion's own parity check must pass, and every float32 output's max abs
  error must stay within 1e-4 of that output's scale (its max magnitude);
- ``converter.validate`` then compares them again at two other sizes of every
  dynamic dim (batch 3 and 5, sequence 4 and 6), two random batches each, which
  proves the symbolic dims survived the conversion.

Known failures are marked ``xfail`` with their diagnosis (see ``KNOWN``).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import converter  # noqa: E402
from converter import formats, parity  # noqa: E402
from converter.runners import open_runner  # noqa: E402

MODELS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "models"

#: fixture path (under fixtures/models) -> input specs the source lacks (TorchScript files)
SOURCES: dict[str, list[str] | None] = {
    **{f"onnx/{n}.onnx": None for n in ("attention", "cnn", "control_flow", "external_data", "mlp")},
    **{f"torch/{n}.pt2": None for n in ("causal_lm", "cond", "gru", "lstm", "multi_out", "resnet_like",
                                        "transformer", "tuple_out")},
    "torch/resnet_like.ts.pt": ["x:batch x 3 x 32 x 32"],
    "torch/gru.ts.pt": ["x:5x3x8"],  # TS2EPConverter bakes the GRU's batch into h0: static only
    **{f"tf/{n}": None for n in ("cnn.keras", "cnn_savedmodel", "control_flow_savedmodel", "frozen_cnn.pb",
                                 "gru_text.keras", "int_bool.keras", "int_bool_savedmodel", "lstm_text.h5",
                                 "multi_io.h5", "multi_io.keras", "transformer.keras", "transformer_savedmodel")},
}

#: target format -> destination suffix (none: a SavedModel directory)
TARGETS = {"onnx": ".onnx", "torchscript": ".pt", "savedmodel": ""}

#: the sizes each symbolic dim takes in the two ``validate`` runs (batch, every other symbol)
SIZES = [(3, 4), (5, 6)]

#: (source, target) -> the xfail mark of a known failure, with its diagnosis.
KNOWN: dict[tuple[str, str], Any] = {}


def _cases() -> list[Any]:
    return [pytest.param(src, tgt, id=f"{src}->{tgt}", marks=[KNOWN[(src, tgt)]] if (src, tgt) in KNOWN else [])
            for src in SOURCES for tgt in TARGETS]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="module")
def reference(workdir) -> Any:
    """Per source, cached: its dims as the IR names them, and its outputs' scales.

    The source's ONNX conversion (``convert(check=True)``, the ONNX cell of the matrix)
    names the dims; the scales are the max magnitude of each output
    of the source run by its own framework on the parity check's first batch.
    """
    cache: dict[str, dict[str, Any]] = {}

    def get(source: str) -> dict[str, Any]:
        if source not in cache:
            onnx_path = workdir / f"{_stem(source)}.ref.onnx"
            result = converter.convert(str(MODELS / source), onnx_path, inputs=SOURCES[source], check=True)
            signature = open_runner(onnx_path, "onnx").signature()
            feeds = parity.make_inputs(signature, seed=0)
            outputs = open_runner(str(MODELS / source), None).run(feeds)
            cache[source] = {
                "onnx": onnx_path,
                "result": result,
                "signature": signature,
                "scales": {k: float(np.max(np.abs(v))) if v.size else 0.0 for k, v in outputs.items()},
            }
        return cache[source]

    return get


def _stem(source: str) -> str:
    return source.replace("/", "_").replace(".", "_")


def _sizes(signature: parity.Signature, batch: int, other: int) -> dict[str, int]:
    """Sizes for every dynamic dim, by symbol and by ``input:axis`` (how parity keys unnamed dims)."""
    sizes: dict[str, int] = {}
    for name, dims, _ in signature:
        for axis, d in enumerate(dims):
            if not isinstance(d, int):
                size = batch if d == "batch" or (d is None and axis == 0) else other
                if d is not None:
                    sizes[d] = size
                sizes[f"{name}:{axis}"] = size
    return sizes


def _check_against_scale(report: Any, scales: dict[str, float]) -> float:
    """Every float output within 1e-4 of its scale; returns the worst relative error."""
    assert report.passed, report.summary()
    worst = 0.0
    for out in report.outputs:
        if out.dtype.startswith("float"):
            scale = max(scales.get(out.name, 0.0), 1e-6)
            assert out.max_abs_error <= 1e-4 * scale, (out.name, out.max_abs_error, scale)
            worst = max(worst, out.max_abs_error / scale)
        else:
            assert out.max_abs_error == 0, (out.name, out.max_abs_error)
    return worst


@pytest.mark.parametrize(("source", "target"), _cases())
def test_converts_with_parity_and_dynamic_dims(source, target, workdir, reference, record_property):
    if target == "savedmodel" and not formats.FORMATS["savedmodel"].can_write():
        pytest.skip("the SavedModel back end (converter/backends/savedmodel.py) is not there yet")
    ref = reference(source)
    if target == "onnx":  # the reference is this very conversion
        destination, result = ref["onnx"], ref["result"]
    else:
        destination = workdir / f"{_stem(source)}{TARGETS[target] or '_savedmodel'}"
        result = converter.convert(str(MODELS / source), destination, inputs=SOURCES[source], check=True)
    assert result.target_format == target
    assert result.parity is not None, result.parity_note
    worst = _check_against_scale(result.parity, ref["scales"])
    record_property("max_error_vs_scale", worst)
    record_property("nodes", f"{result.nodes_before}->{result.nodes_after}")

    # The IR of the ONNX result gives parity the signature where neither side records one.
    ir_model = converter.load(ref["onnx"])
    for batch, other in SIZES:
        sizes = _sizes(ref["signature"], batch, other)
        report = converter.validate(str(MODELS / source), destination, batches=2, sizes=sizes, model=ir_model)
        worst = max(worst, _check_against_scale(report, ref["scales"]))
        for name, dims, _ in ref["signature"]:
            fed = report.input_shapes[name]
            for axis, d in enumerate(dims):
                if not isinstance(d, int):
                    assert fed[axis] == sizes[f"{name}:{axis}"], (name, axis, fed)
    record_property("max_error_vs_scale_all_sizes", worst)
