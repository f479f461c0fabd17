"""TF spectral kernels (DFT, STFT, windows) against numpy's FFT.

The conformance cases cover the ops eagerly; here the step and lengths are
initializers, as exported models hold them, and the model is traced into a
SavedModel with a dynamic batch (``torch.stft`` exports as this STFT).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import ir  # noqa: E402
from converter.backends import savedmodel  # noqa: E402


def _stft_model() -> ir.Model:
    nodes = [
        helper.make_node("HannWindow", ["size"], ["window"], periodic=1),
        helper.make_node("STFT", ["signal", "step", "window", "length"], ["spectrum"], onesided=1),
    ]
    inits = [numpy_helper.from_array(np.array(16, np.int64), "size"), numpy_helper.from_array(np.array(4, np.int64), "step"),
             numpy_helper.from_array(np.array(16, np.int64), "length")]
    graph = helper.make_graph(nodes, "stft", [helper.make_tensor_value_info("signal", TensorProto.FLOAT, ["batch", 64, 1])],
                              [helper.make_tensor_value_info("spectrum", TensorProto.FLOAT, None)], initializer=inits)
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10))


def _numpy_stft(x: np.ndarray) -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)
    frames = np.stack([x[:, i:i + 16, 0] for i in range(0, 64 - 16 + 1, 4)], 1) * window
    y = np.fft.rfft(frames, axis=-1)
    return np.stack([y.real, y.imag], -1)


def test_stft_with_constant_step_in_a_savedmodel_matches_numpy(tmp_path) -> None:
    savedmodel.save(_stft_model(), tmp_path / "sm")
    serving = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 64, 1)).astype(np.float32)
        (got,) = serving(signal=tf.constant(x)).values()
        np.testing.assert_allclose(got.numpy(), _numpy_stft(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("inverse", [0, 1])
def test_dft_on_an_inner_axis_matches_numpy(inverse: int) -> None:
    from kernels.tf import TF

    x = np.random.default_rng(0).standard_normal((2, 5, 3, 2)).astype(np.float32)  # complex pairs
    got = TF.lookup("DFT", 20)(tf.constant(x), None, tf.constant(1, tf.int64), inverse=inverse).numpy()
    z = x[..., 0] + 1j * x[..., 1]
    want = np.fft.ifft(z, axis=1) if inverse else np.fft.fft(z, axis=1)
    np.testing.assert_allclose(got, np.stack([want.real, want.imag], -1), rtol=1e-5, atol=1e-5)
