"""onnxruntime's contrib ops (``com.microsoft``, and SimplifiedLayerNormalization in the default
domain) on the torch and TensorFlow kernels, against onnxruntime itself.

Each op runs as a one-node model (opset imports "" 21 and "com.microsoft" 1) through
onnxruntime, ``kernels.executor.run`` (torch) and ``kernels.tf.run.run`` (TensorFlow, eager).
Integer outputs must equal onnxruntime's exactly; float outputs within rtol 1e-4 (atol 1e-5).
Then two real models end to end through ``converter.convert(..., check=True)`` to TorchScript
and to a SavedModel: the CNN fixture quantized by ``onnxruntime.quantization.quantize_static``
in QOperator format (QLinearConv, QGemm, QLinearAdd, QLinearGlobalAveragePool, ...), and a
2-layer BERT exported by ``torch.onnx.export`` and fused by
``onnxruntime.transformers.optimizer.optimize_model`` (EmbedLayerNormalization, Attention,
SkipLayerNormalization, BiasGelu); the API's parity check compares each against onnxruntime.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest

import ir

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")

import onnx  # noqa: E402
from onnx import helper  # noqa: E402

import kernels.tf.contrib_quant  # noqa: E402,F401  registers
import kernels.tf.contrib_transformer  # noqa: E402,F401  registers
import kernels.torch.contrib_quant  # noqa: E402,F401  registers
import kernels.torch.contrib_transformer  # noqa: E402,F401  registers
from kernels.executor import run as torch_run  # noqa: E402
from kernels.tf.run import run as tf_run  # noqa: E402

RNG = np.random.default_rng(0)
MS = "com.microsoft"
ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Case:
    """One node: ``op`` with named inputs (``None``: omitted), attributes and ``outputs`` used.

    The first ``feeds`` inputs are graph inputs, the others initializers.
    """

    id: str
    op: str
    inputs: list[tuple[str, np.ndarray | None]]
    attrs: dict = dataclasses.field(default_factory=dict)
    outputs: int = 1
    feeds: int = 1
    domain: str = MS
    steps: int = 0  # quantization steps an integer output may differ by (see where set)
    reference: object = None  # numpy reference for ops onnxruntime has no CPU kernel for


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape).astype(np.uint8)


def _i8(*shape: int) -> np.ndarray:
    return RNG.integers(-128, 128, shape).astype(np.int8)


def _f(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _s(value: float) -> np.ndarray:
    return np.array(value, np.float32)


def _z(value: int, dtype=np.uint8) -> np.ndarray:
    return np.array(value, dtype)


def _qparams(prefix: str, scale: float, zero: int, dtype=np.uint8) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}_scale", _s(scale)), (f"{prefix}_zero_point", _z(zero, dtype))]


def _binary(op: str, dtype) -> Case:
    make = _u8 if dtype == np.uint8 else _i8
    zero = 128 if dtype == np.uint8 else 0
    return Case(f"{op}_{np.dtype(dtype).name}", op, [
        ("a", make(2, 3, 4, 5)), *_qparams("a", 0.031, zero - 3, dtype),
        ("b", make(3, 1, 5)), *_qparams("b", 0.017, zero + 5, dtype),
        *_qparams("c", 0.043 if op == "QLinearAdd" else 0.05, zero + 1, dtype)], feeds=1)


def _unary(op: str, **attrs) -> Case:
    return Case(op, op, [("x", _u8(2, 3, 8)), *_qparams("x", 0.05, 120), *_qparams("y", 0.004 if op != "QLinearLeakyRelu" else 0.03, 20)],
                attrs)


def _nbits(n: int, k: int, block: int, zero_points: str = "") -> Case:
    blocks = (k + block - 1) // block
    inputs = [("a", _f(2, 3, k)), ("b", _u8(n, blocks, block // 2)), ("scales", _f(n * blocks, scale=0.05))]
    packed = _u8(n * ((blocks + 1) // 2))
    inputs.append(("zero_points", {"": None, "packed": packed, "float": _f(n * blocks, scale=3)}[zero_points]))
    return Case(f"MatMulNBits_{n}x{k}_b{block}_{zero_points or 'no'}_zp", "MatMulNBits", inputs,
                {"K": k, "N": n, "bits": 4, "block_size": block})


def _attention(mask: np.ndarray | None, tag: str, **attrs) -> Case:
    return Case(f"Attention_{tag}", "Attention", [
        ("x", _f(2, 5, 16)), ("weights", _f(16, 48, scale=0.3)), ("bias", _f(48, scale=0.1)),
        ("mask_index", mask)], {"num_heads": 4, **attrs}, outputs=1)


#: QLinearAveragePool: onnxruntime averages in its own integer / float order and its tests
#: (qlinear_pool_test.cc) accept 1 step against the float pool; so do these.
QUANT = [
    _binary("QLinearAdd", np.uint8),
    _binary("QLinearAdd", np.int8),
    _binary("QLinearMul", np.uint8),
    _binary("QLinearMul", np.int8),
    _unary("QLinearSigmoid"),
    _unary("QLinearLeakyRelu", alpha=0.1),
    Case("QLinearSoftmax", "QLinearSoftmax", [("x", _u8(2, 3, 10)), *_qparams("x", 0.08, 128),
                                              *_qparams("y", 1 / 256, 0)], {"opset": 13, "axis": -1}),
    Case("QLinearSoftmax_opset12", "QLinearSoftmax", [("x", _i8(2, 3, 4)), *_qparams("x", 0.08, 0, np.int8),
                                                      *_qparams("y", 1 / 256, -128, np.int8)], {"opset": 12, "axis": 1}),
    Case("QLinearGlobalAveragePool", "QLinearGlobalAveragePool",
         [("x", _u8(2, 3, 7, 5)), *_qparams("x", 0.05, 131), *_qparams("y", 0.031, 125)]),
    Case("QLinearGlobalAveragePool_nhwc", "QLinearGlobalAveragePool",
         [("x", _u8(2, 7, 5, 3)), *_qparams("x", 0.05, 131), *_qparams("y", 0.031, 125)], {"channels_last": 1}),
    Case("QLinearAveragePool", "QLinearAveragePool",
         [("x", _u8(1, 3, 9, 8)), *_qparams("x", 0.05, 131), *_qparams("y", 0.04, 125)],
         {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, steps=1),
    Case("QLinearAveragePool_include_pad", "QLinearAveragePool",
         [("x", _u8(1, 3, 9, 8)), *_qparams("x", 0.05, 131), *_qparams("y", 0.04, 125)],
         {"kernel_shape": [2, 3], "pads": [0, 1, 1, 1], "count_include_pad": 1}, steps=1),
    Case("QLinearConcat", "QLinearConcat", [*_qparams("y", 0.05, 128), ("x0", _u8(2, 3, 4)),
                                            *_qparams("x0", 0.03, 120), ("x1", _u8(2, 5, 4)),
                                            *_qparams("x1", 0.07, 130)], {"axis": 1}, feeds=0),
    Case("QGemm", "QGemm", [("a", _u8(4, 6)), *_qparams("a", 0.02, 130), ("b", _i8(6, 5)),
                            ("b_scale", _f(5, scale=0.01) ** 2 + 0.01), ("b_zero_point", np.zeros(5, np.int8)),
                            ("c", RNG.integers(-500, 500, 5).astype(np.int32)), *_qparams("y", 0.05, 120)]),
    Case("QGemm_transB_alpha", "QGemm", [("a", _u8(4, 6)), *_qparams("a", 0.02, 130), ("b", _u8(5, 6)),
                                         *_qparams("b", 0.03, 127), ("c", None), *_qparams("y", 0.05, 120)],
         {"transB": 1, "alpha": 0.5}),
    Case("QGemm_int8", "QGemm", [("a", _i8(4, 6)), *_qparams("a", 0.02, 3, np.int8), ("b", _i8(6, 5)),
                                 *_qparams("b", 0.03, 0, np.int8), ("c", None), *_qparams("y", 0.04, -5, np.int8)]),
    Case("QGemm_float_out", "QGemm", [("a", _u8(4, 6)), *_qparams("a", 0.02, 130), ("b", _i8(6, 5)),
                                      *_qparams("b", 0.03, 0, np.int8),
                                      ("c", RNG.integers(-500, 500, 5).astype(np.int32))]),
    Case("DynamicQuantizeMatMul", "DynamicQuantizeMatMul",
         [("a", _f(3, 4, 8)), ("b", _i8(8, 6)), ("b_scale", _f(6, scale=0.01) ** 2 + 0.01),
          ("b_zero_point", np.zeros(6, np.int8)), ("bias", _f(6))]),
    Case("MatMulIntegerToFloat", "MatMulIntegerToFloat",
         [("a", _u8(3, 4, 8)), ("b", _i8(8, 6)), ("a_scale", _s(0.02)), ("b_scale", _s(0.03)),
          ("a_zero_point", _z(128)), ("b_zero_point", _z(2, np.int8)), ("bias", _f(6))]),
]

TRANSFORMER = [
    Case("Gelu", "Gelu", [("x", _f(2, 3, 8, scale=2))]),
    Case("FastGelu", "FastGelu", [("x", _f(2, 3, 8, scale=2)), ("bias", _f(8))]),
    Case("BiasGelu", "BiasGelu", [("a", _f(2, 3, 8, scale=2)), ("b", _f(8))]),
    Case("QuickGelu", "QuickGelu", [("x", _f(2, 3, 8, scale=2))], {"alpha": 1.5}),
    Case("BiasAdd", "BiasAdd", [("x", _f(2, 3, 8)), ("bias", _f(8)), ("skip", _f(2, 3, 8))],
         reference=lambda x, bias, skip: [x + bias + skip]),  # onnxruntime runs BiasAdd on CUDA only
    Case("FusedMatMul", "FusedMatMul", [("a", _f(2, 5, 4)), ("b", _f(2, 6, 5))],
         {"alpha": 0.7, "transA": 1, "transB": 1}),
    Case("SkipLayerNormalization", "SkipLayerNormalization",
         [("x", _f(2, 3, 16)), ("skip", _f(2, 3, 16)), ("gamma", _f(16)), ("beta", _f(16)), ("bias", _f(16))],
         {"epsilon": 1e-5}, outputs=4),
    Case("SkipSimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization",
         [("x", _f(2, 3, 16)), ("skip", _f(2, 3, 16)), ("gamma", _f(16))], {"epsilon": 1e-6}),
    Case("SimplifiedLayerNormalization", "SimplifiedLayerNormalization", [("x", _f(2, 3, 16)), ("scale", _f(16))],
         {"epsilon": 1e-6}, domain=""),
    Case("EmbedLayerNormalization", "EmbedLayerNormalization", [
        ("input_ids", RNG.integers(0, 30, (2, 7)).astype(np.int32)),
        ("segment_ids", RNG.integers(0, 2, (2, 7)).astype(np.int32)),
        ("word_embedding", _f(30, 16)), ("position_embedding", _f(12, 16)), ("segment_embedding", _f(2, 16)),
        ("gamma", _f(16)), ("beta", _f(16)), ("mask", np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32))],
        {"epsilon": 1e-5}, outputs=3, feeds=2),
    _attention(None, "no_mask"),
    _attention(np.array([5, 3], np.int32), "mask_1d"),
    _attention(np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.int32), "mask_2d"),
    _attention(None, "unidirectional", unidirectional=1),
    _attention(np.array([5, 4, 0, 1], np.int32), "mask_1d_end_start"),
    _attention((RNG.random((2, 5, 5)) > 0.3).astype(np.int32), "mask_3d"),
    Case("Attention_past_causal", "Attention", [
        ("x", _f(2, 3, 16)), ("weights", _f(16, 48, scale=0.3)), ("bias", _f(48, scale=0.1)), ("mask_index", None),
        ("past", _f(2, 2, 4, 4, 4))], {"num_heads": 4, "scale": 0.3, "unidirectional": 1}, outputs=2),
    Case("Attention_attention_bias", "Attention", [
        ("x", _f(2, 3, 16)), ("weights", _f(16, 48, scale=0.3)), ("bias", _f(48, scale=0.1)), ("mask_index", None),
        ("past", None), ("attention_bias", _f(1, 4, 3, 3))], {"num_heads": 4}),
    Case("MultiHeadAttention", "MultiHeadAttention", [
        ("query", _f(2, 4, 16)), ("key", _f(2, 6, 16)), ("value", _f(2, 6, 16)), ("bias", _f(48, scale=0.1)),
        ("key_padding_mask", np.array([[1] * 6, [1] * 4 + [0] * 2], np.int32))], {"num_heads": 4}, feeds=3),
    Case("MultiHeadAttention_bnsh_kv_bias", "MultiHeadAttention", [
        ("query", _f(2, 3, 16)), ("key", _f(2, 4, 5, 4)), ("value", _f(2, 4, 5, 4)), ("bias", None),
        ("key_padding_mask", None), ("attention_bias", _f(2, 1, 3, 5))], {"num_heads": 4}, feeds=3),
    Case("MultiHeadAttention_past_causal", "MultiHeadAttention", [
        ("query", _f(2, 2, 16)), ("key", _f(2, 2, 16)), ("value", _f(2, 2, 16)), ("bias", None),
        ("key_padding_mask", None), ("attention_bias", None), ("past_key", _f(2, 4, 3, 4)),
        ("past_value", _f(2, 4, 3, 4))], {"num_heads": 4, "unidirectional": 1}, outputs=3, feeds=3),
    Case("RotaryEmbedding_4d_partial", "RotaryEmbedding", [
        ("x", _f(2, 2, 5, 8)), ("position_ids", RNG.integers(0, 10, (2, 5)).astype(np.int64)),
        ("cos_cache", np.cos(_f(10, 2))), ("sin_cache", np.sin(_f(10, 2)))], {"rotary_embedding_dim": 4, "num_heads": 2}),
    Case("RotaryEmbedding", "RotaryEmbedding", [
        ("x", _f(2, 5, 16)), ("position_ids", RNG.integers(0, 10, (2, 5)).astype(np.int64)),
        ("cos_cache", np.cos(_f(10, 4))), ("sin_cache", np.sin(_f(10, 4)))], {"num_heads": 2}),
    Case("RotaryEmbedding_interleaved_offset", "RotaryEmbedding", [
        ("x", _f(2, 5, 16)), ("position_ids", np.array([2], np.int64)),
        ("cos_cache", np.cos(_f(10, 4))), ("sin_cache", np.sin(_f(10, 4)))], {"num_heads": 2, "interleaved": 1}),
    _nbits(6, 64, 32),
    _nbits(5, 40, 16, "packed"),
    _nbits(4, 32, 16, "float"),
]

CASES = QUANT + TRANSFORMER


def _proto(case: Case) -> onnx.ModelProto:
    present = [(n, a) for n, a in case.inputs if a is not None]
    feeds = present[:case.feeds]
    inits = present[case.feeds:]
    outs = [f"y{i}" for i in range(case.outputs)]
    node = helper.make_node(case.op, [n if a is not None else "" for n, a in case.inputs], outs,
                            domain=case.domain, **case.attrs)
    graph = helper.make_graph(
        [node], case.id,
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds],
        [helper.make_empty_tensor_value_info(o) for o in outs],
        [onnx.numpy_helper.from_array(a, n) for n, a in inits])
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid(MS, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def _feeds(case: Case) -> dict[str, np.ndarray]:
    return dict([(n, a) for n, a in case.inputs if a is not None][:case.feeds])


def _onnxruntime(proto: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _assert_close(got: np.ndarray, want: np.ndarray, what: str, steps: int = 0) -> None:
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if np.issubdtype(want.dtype, np.integer):
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        assert diff.max(initial=0) <= steps, f"{what}: {np.count_nonzero(diff)} values differ, by up to {diff.max()}"
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=what)


#: Outputs onnxruntime's CPU kernels leave uncomputed (mean and inv_std_var of SkipLayerNormalization).
UNCHECKED = {"SkipLayerNormalization": {1, 2}}


@pytest.mark.parametrize("runtime", ["torch", "tf"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_onnxruntime(case: Case, runtime: str) -> None:
    proto = _proto(case)
    feeds = _feeds(case)
    if case.reference is not None:
        want = case.reference(*[a for _, a in case.inputs])
    else:
        want = _onnxruntime(proto, feeds)
    model = ir.from_proto(proto)
    runner = torch_run if runtime == "torch" else tf_run
    got = runner(model, feeds)
    for i, w in enumerate(want):
        if i not in UNCHECKED.get(case.op, set()):
            _assert_close(got[f"y{i}"], w, f"{case.id} output {i} on {runtime}", case.steps)


# --- real models, end to end -------------------------------------------------------------


def _contrib_ops(path: pathlib.Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node if n.domain == MS}


@pytest.fixture(scope="module")
def quantized_cnn(tmp_path_factory) -> pathlib.Path:
    """The CNN fixture quantized by onnxruntime (static, QOperator, every op type it quantizes)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    src = ROOT / "fixtures" / "models" / "onnx" / "cnn.onnx"
    name = onnx.load(str(src)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    path = tmp_path_factory.mktemp("qcnn") / "cnn_q.onnx"
    quantize_static(str(src), str(path), Reader(), quant_format=QuantFormat.QOperator)
    return path


@pytest.fixture(scope="module")
def fused_bert(tmp_path_factory) -> tuple[pathlib.Path, dict[str, np.ndarray]]:
    """A 2-layer BERT (hidden 64, 4 heads) exported by the TorchScript exporter and fused by
    onnxruntime's transformer optimizer; with inputs whose second row is padded."""
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=32, attn_implementation="eager")
    bert = BertModel(config).eval()

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state, out.pooler_output

    ids = torch.randint(0, 100, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.int64)
    mask[1, 5:] = 0
    types = torch.zeros(2, 8, dtype=torch.int64)
    types[:, 4:] = 1
    names = ["input_ids", "attention_mask", "token_type_ids"]
    folder = tmp_path_factory.mktemp("bert")
    torch.onnx.export(Outputs(), (ids, mask, types), str(folder / "bert.onnx"), input_names=names,
                      output_names=["last_hidden_state", "pooler_output"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "seq"} for n in names})
    fused = optimize_model(str(folder / "bert.onnx"), model_type="bert", num_heads=4, hidden_size=64)
    fused.save_model_to_file(str(folder / "bert_fused.onnx"))
    return folder / "bert_fused.onnx", dict(zip(names, (ids.numpy(), mask.numpy(), types.numpy()), strict=True))


def _check_passed(result) -> None:
    assert result.parity is not None and all(o.passed for o in result.parity.outputs), result.parity


@pytest.mark.parametrize("target", ["pt", "savedmodel"])
def test_quantized_cnn_converts_with_parity(quantized_cnn: pathlib.Path, target: str, tmp_path) -> None:
    from converter import api

    assert {"QGemm", "QLinearGlobalAveragePool"} <= _contrib_ops(quantized_cnn)
    if target == "pt":
        result = api.convert(str(quantized_cnn), str(tmp_path / "out.pt"), check=True)
    else:
        result = api.convert(str(quantized_cnn), str(tmp_path / "saved"), target_format="savedmodel", check=True)
    _check_passed(result)


@pytest.mark.parametrize("target", ["pt", "savedmodel"])
def test_fused_bert_converts_with_parity(fused_bert, target: str, tmp_path) -> None:
    from converter import api

    path, feeds = fused_bert
    assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization", "BiasGelu"} <= _contrib_ops(path)
    if target == "pt":
        result = api.convert(str(path), str(tmp_path / "out.pt"), check=True, inputs=feeds)
    else:
        result = api.convert(str(path), str(tmp_path / "saved"), target_format="savedmodel", check=True, inputs=feeds)
    _check_passed(result)


def test_every_contrib_kernel_has_a_case() -> None:
    from kernels.tf import TF
    from kernels.torch import TORCH

    tested = {ir.op_key(c.op, c.domain) for c in CASES}
    for table in (TORCH, TF):
        contrib = {op for op in table.ops() if op.startswith(MS + "::") or op == "SimplifiedLayerNormalization"}
        assert contrib <= tested, f"{table.runtime} contrib kernels without a case: {sorted(contrib - tested)}"


@pytest.mark.parametrize("module", [kernels.torch.contrib_quant, kernels.torch.contrib_transformer],
                         ids=lambda m: m.__name__)
def test_torch_kernels_are_scriptable(module) -> None:
    import inspect

    kernels_of = [fn for name, fn in inspect.getmembers(module, inspect.isfunction)
                  if fn.__module__ == module.__name__ and not name.startswith("_")]
    assert kernels_of
    for fn in kernels_of:
        torch.jit.script(fn)
