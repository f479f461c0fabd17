"""nn.LSTM / nn.GRU / nn.RNN with a dynamic sequence length: torch eager ≈ onnxruntime.

Each module is converted with ``seq`` and ``batch`` symbolic (``convert(...,
check=True)`` runs parity at the export's sizes), then the ONNX file runs in
onnxruntime at other lengths and batch sizes against the module itself. The
user's module must come back exactly as it was: same outputs, same submodule
types, same state_dict, no ``forward`` left on any instance.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from converter.api import convert  # noqa: E402
from converter.errors import NotYetSupportedError  # noqa: E402
from converter.frontends.torch.recurrent import routed_recurrent  # noqa: E402
from converter.inputs import InputSpec  # noqa: E402

B, S = "batch", "seq"
#: (batch, seq) sizes other than the export's examples
SIZES = [(1, 1), (3, 11), (2, 23)]


class Wrap(nn.Module):
    """Calls ``rnn(x)`` or ``rnn(x, states)`` and returns every output as a flat tuple."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None, c0: torch.Tensor | None = None) -> Any:
        if h0 is None:
            y, state = self.rnn(x)
        else:
            y, state = self.rnn(x, h0 if c0 is None else (h0, c0))
        return (y, *state) if isinstance(state, tuple) else (y, state)


class TextClassifier(nn.Module):
    """Embedding -> bidirectional 2-layer LSTM -> Linear on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 6)
        self.lstm = nn.LSTM(6, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.embed(tokens))
        return self.head(y[:, -1])


def _snapshot(module: nn.Module) -> dict[str, Any]:
    return {
        "types": [(name, type(m)) for name, m in module.named_modules()],
        "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "patched": [name for name, m in module.named_modules() if "forward" in m.__dict__],
        "training": module.training,
    }


def _assert_unchanged(module: nn.Module, before: dict[str, Any], feeds: list[torch.Tensor], expected: Any) -> None:
    after = _snapshot(module)
    assert after["types"] == before["types"]
    assert after["patched"] == before["patched"] == []
    assert after["training"] == before["training"]
    assert after["state"].keys() == before["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), k
    with torch.no_grad():
        again = module(*feeds)
    for a, b in zip(_flat(again), _flat(expected), strict=True):
        assert torch.equal(a, b)


def _flat(result: Any) -> list[torch.Tensor]:
    """The tensors of a (nested) tuple, in order, as the converted model's outputs are."""
    if isinstance(result, tuple | list):
        return [t for r in result for t in _flat(r)]
    return [result]


def _feeds(specs: list[InputSpec], batch: int, seq: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in specs:
        shape = [batch if d == B else seq if d == S else d for d in spec.shape]
        if spec.dtype == "int64":
            out.append(torch.randint(0, 50, shape, generator=gen))
        else:
            out.append(torch.randn(shape, generator=gen))
    return out


def _convert_and_compare(module: nn.Module, specs: list[InputSpec], tmp_path: pathlib.Path, expect_op: str) -> pathlib.Path:
    """Convert with parity, then compare onnxruntime with ``module`` at :data:`SIZES`."""
    module.eval()
    probe = _feeds(specs, 2, 5, seed=99)
    with torch.no_grad():
        probe_out = module(*probe)
    before = _snapshot(module)
    path = tmp_path / "model.onnx"
    convert(module, path, inputs=specs, check=True)
    _assert_unchanged(module, before, probe, probe_out)

    proto = onnx.load(path)
    assert expect_op in {n.op_type for n in proto.graph.node}
    assert not any(n.op_type in ("Loop", "Scan") for n in proto.graph.node)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for i, (batch, seq) in enumerate(SIZES):
        feeds = _feeds(specs, batch, seq, seed=i)
        with torch.no_grad():
            expected = _flat(module(*feeds))
        got = sess.run(None, {n: f.numpy() for n, f in zip(names, feeds, strict=True)})
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == tuple(e.shape)
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=1e-5)
    return path


def _x(batch_first: bool, features: int) -> InputSpec:
    return InputSpec("x", (B, S, features) if batch_first else (S, B, features))


def _states(name: str, layers: int, hidden: int) -> InputSpec:
    return InputSpec(name, (layers, B, hidden))


CASES = [
    pytest.param(nn.LSTM(4, 8), [_x(False, 4)], "LSTM", id="lstm"),
    pytest.param(
        nn.LSTM(4, 8, num_layers=2, bidirectional=True, batch_first=True),
        [_x(True, 4), _states("h0", 4, 8), _states("c0", 4, 8)], "LSTM", id="lstm_2layer_bi_batch_first_h0_c0",
    ),
    pytest.param(nn.LSTM(4, 8, num_layers=2, bias=False), [_x(False, 4), _states("h0", 2, 8), _states("c0", 2, 8)],
                 "LSTM", id="lstm_2layer_no_bias_h0_c0"),
    pytest.param(nn.LSTM(4, 5, bidirectional=True, batch_first=True), [_x(True, 4)], "LSTM", id="lstm_bi_batch_first"),
    pytest.param(nn.GRU(4, 6, num_layers=2, bidirectional=True), [_x(False, 4), _states("h0", 4, 6)], "GRU",
                 id="gru_2layer_bi_h0"),
    pytest.param(nn.GRU(4, 6, batch_first=True), [_x(True, 4)], "GRU", id="gru_batch_first"),
    pytest.param(nn.RNN(4, 6, num_layers=2), [_x(False, 4)], "RNN", id="rnn_tanh_2layer"),
    pytest.param(nn.RNN(4, 6, nonlinearity="relu", bidirectional=True, batch_first=True),
                 [_x(True, 4), _states("h0", 2, 6)], "RNN", id="rnn_relu_bi_batch_first_h0"),
]


@pytest.mark.parametrize(("rnn", "specs", "op"), CASES)
def test_recurrent_layer_accepts_any_length_and_batch(rnn: nn.Module, specs: list[InputSpec], op: str, tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    _convert_and_compare(Wrap(rnn), specs, tmp_path, op)


def test_text_classifier_to_onnx_torchscript_and_savedmodel(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    model = TextClassifier()
    onnx_path = _convert_and_compare(model, [InputSpec("tokens", (B, S), "int64")], tmp_path, "LSTM")
    convert(onnx_path, tmp_path / "model.pt", check=True)
    ts = torch.jit.load(str(tmp_path / "model.pt"))
    tokens = torch.randint(0, 50, (3, 13), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(ts(tokens), model(tokens), rtol=1e-5, atol=1e-5)
    convert(onnx_path, tmp_path / "model_savedmodel", target_format="savedmodel", check=True)


def test_a_bare_lstm_module_is_routed_and_restored(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    _convert_and_compare(lstm, [_x(True, 3)], tmp_path, "LSTM")
    assert "forward" not in lstm.__dict__


def test_unbatched_input_through_the_routed_module() -> None:
    torch.manual_seed(0)
    gru = nn.GRU(3, 4).eval()
    x, h0 = torch.randn(7, 3), torch.randn(1, 4)
    expected = gru(x, h0)
    with routed_recurrent(gru) as routed:
        got = gru(x, h0)
    assert routed == 1
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_modules_are_restored_when_the_block_fails() -> None:
    model = TextClassifier()
    own = model.lstm.forward = model.lstm.forward  # an instance forward set by the user survives as is
    with pytest.raises(RuntimeError, match="boom"), routed_recurrent(model) as routed:
        assert routed == 1 and model.lstm.forward is not own
        raise RuntimeError("boom")
    assert model.lstm.__dict__["forward"] is own


def test_subclass_with_its_own_forward_is_left_alone() -> None:
    class Custom(nn.LSTM):
        def forward(self, x: torch.Tensor, hx: Any = None) -> Any:
            return super().forward(x * 2, hx)

    model = Wrap(Custom(3, 4))
    with routed_recurrent(model) as routed:
        assert routed == 0


def test_proj_size_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    model = Wrap(nn.LSTM(4, 8, proj_size=3)).eval()
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        expected = model(x)
    before = _snapshot(model)
    with pytest.raises(NotYetSupportedError, match="proj_size"):
        convert(model, tmp_path / "m.onnx", inputs=[_x(False, 4)], check=False)
    assert not (tmp_path / "m.onnx").exists()
    _assert_unchanged(model, before, [x], expected)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_users_exported_program_keeps_aten_rnn_at_its_static_length(nonlinearity: str, tmp_path: pathlib.Path) -> None:
    """A program torch.export traced itself holds ``aten::rnn_*``: its length is fixed, its batch is not."""
    torch.manual_seed(0)
    module = Wrap(nn.RNN(4, 6, num_layers=2, nonlinearity=nonlinearity, bidirectional=True)).eval()
    batch = torch.export.Dim("batch")
    ep = torch.export.export(module, (torch.randn(5, 2, 4),), dynamic_shapes={"x": {1: batch}})
    assert f"aten.rnn_{nonlinearity}.input" in {str(n.target) for n in ep.graph.nodes}
    path = tmp_path / "model.onnx"
    convert(ep, path, check=True)
    assert "RNN" in {n.op_type for n in onnx.load(path).graph.node}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in (1, 3):
        x = torch.randn(5, b, 4)
        with torch.no_grad():
            expected = _flat(module(x))
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-5, atol=1e-5)
