"""Ranges of dynamic dims (``--input 'ids:batch x seq=..64:int64'``) and the names of symbols.

Truths: torch's own outputs (run in onnxruntime at several sizes, inside and at the
edge of a range), torch.export's own verdicts (it refuses a dim the model limits, and
accepts it once bounded as the error message told), and the ``Dim`` names the user
gave torch.export, which must come back as the ONNX inputs' symbolic dims.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

import ir  # noqa: E402
from converter.errors import InputError  # noqa: E402
from converter.frontends.torch import load  # noqa: E402
from converter.inputs import InputSpec, model_symbol_bounds  # noqa: E402

Dim = torch.export.Dim
VOCAB, POSITIONS = 100, 64


def ort_outputs(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs by name, run in onnxruntime from its serialized ONNX."""
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def dims_of(value: ir.Value) -> list[object]:
    return [d if isinstance(d, int) else d.value for d in value.shape]


# ---- BERT: a position table of 64 rows bounds seq ---------------------------------------


@pytest.fixture(scope="module")
def bert() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=POSITIONS)
    return transformers.BertModel(config).eval()


def test_bert_with_a_bounded_seq_matches_torch_at_two_lengths(bert: nn.Module) -> None:
    model = load(bert, inputs=[InputSpec.parse(f"input_ids:batch x seq=..{POSITIONS}:int64")])
    assert dims_of(model.graph.inputs[0]) == ["batch", "seq"]
    assert model_symbol_bounds(model)["seq"] == (1, POSITIONS)
    for batch, seq in ((2, 5), (3, POSITIONS)):  # a short one and the longest the table allows
        ids = torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seq))
        got = list(ort_outputs(model, {"input_ids": ids.numpy()}).values())
        with torch.no_grad():
            out = bert(ids)
        want = [out.last_hidden_state, out.pooler_output]  # the ModelOutput's leaves, in order
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)


def test_bert_without_a_range_takes_the_models_own_limit(bert: nn.Module) -> None:
    """The 64-row position table limits seq: torch.export says so and the export is retried with it."""
    model = load(bert, inputs=[InputSpec.parse("input_ids:batch x seq:int64")])
    assert model_symbol_bounds(model)["seq"] == (1, POSITIONS)
    ids = torch.randint(0, VOCAB, (2, POSITIONS), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = bert(ids).last_hidden_state
    got = list(ort_outputs(model, {"input_ids": ids.numpy()}).values())[0]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match=rf"seq only up to {POSITIONS}; use --input 'input_ids:batch x seq=\.\.{POSITIONS}:int64'"):
        from converter.frontends.torch.symbols import constraint_error

        try:
            torch.export.export(bert, (ids,), dynamic_shapes=({0: Dim("batch"), 1: Dim("seq")},))
        except Exception as e:  # the message a user sees where no retry applies
            raise constraint_error(e, [InputSpec.parse("input_ids:batch x seq:int64")]) from e


def test_bert_with_dynamic_shapes_and_no_bound_names_the_dim_to_give(bert: nn.Module) -> None:
    ids = torch.randint(0, VOCAB, (2, 5))
    with pytest.raises(InputError, match=rf"dynamic_shapes, use seq = Dim\('seq', max={POSITIONS}\)"):
        load(bert, inputs={"input_ids": ids}, dynamic_shapes={"input_ids": {0: Dim("batch"), 1: Dim("seq")}})


# ---- ranges on small modules --------------------------------------------------------------


class Head(nn.Module):
    """The first 10 steps of sequences longer than 10, else the whole: the example's length picks the branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :10] * 2 if x.shape[1] > 10 else x


def test_examples_are_made_inside_the_range_and_the_range_is_kept() -> None:
    # With no range, the example (length 2) takes the short branch: torch.export limits seq to 10,
    # and the program is exported for that range (recorded, shown in the conversion summary).
    short = load(Head(), inputs=[InputSpec.parse("x:batch x seq")])
    assert model_symbol_bounds(short)["seq"] == (1, 10)
    x = torch.randn(2, 7)
    np.testing.assert_allclose(ort_outputs(short, {"x": x.numpy()})["output"], Head()(x).numpy())
    model = load(Head(), inputs=[InputSpec.parse("x:batch x seq=40..48")])
    assert model_symbol_bounds(model)["seq"] == (40, 48)
    for shape in ((2, 40), (3, 48)):
        x = torch.randn(shape)
        np.testing.assert_allclose(ort_outputs(model, {"x": x.numpy()})["output"], Head()(x).numpy())


def test_a_minimum_from_torch_is_merged_into_the_given_range() -> None:
    from converter.frontends.torch.symbols import constraint_error

    with pytest.raises(Exception) as caught:  # an example of length 12 takes the long branch: seq >= 11
        torch.export.export(Head(), (torch.randn(2, 12),), dynamic_shapes=({1: Dim("seq")},))
    error = constraint_error(caught.value, [InputSpec.parse("x:batch x seq=2..48")])
    assert error is not None and "seq only from 11; use --input 'x:batch x seq=11..48:float32'" in str(error)


def test_a_dim_the_model_fixes_is_named_with_its_size() -> None:
    class Flat6(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(6)

    with pytest.raises(InputError, match=r"fixes batch to 2; use --input 'x:2 x 3:float32'"):
        load(Flat6(), inputs=[InputSpec.parse("x:batch x 3")])


def test_two_symbols_torch_equates_are_rewritten_as_one() -> None:
    from converter.frontends.torch.symbols import constraint_error

    class Add(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    with pytest.raises(Exception) as caught:  # torch's own message, with "Suggested fixes: b = a"
        torch.export.export(Add(), (torch.randn(3), torch.randn(3)), dynamic_shapes=({0: Dim("a")}, {0: Dim("b")}))
    error = constraint_error(caught.value, [InputSpec.parse("x:a"), InputSpec.parse("y:b")])
    assert error is not None and "b must equal a; use --input 'y:a:float32'" in str(error)
    assert constraint_error(ValueError("no fixes here"), None) is None


def test_a_range_given_once_bounds_the_symbol_in_every_input() -> None:
    class Add(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    model = load(Add(), inputs=[InputSpec.parse("x:batch x seq=..16"), InputSpec.parse("y:batch x seq")])
    assert model_symbol_bounds(model)["seq"] == (1, 16)
    saved = ir.from_proto(ir.to_proto(model))  # the ranges survive an ONNX round trip
    assert model_symbol_bounds(saved) == model_symbol_bounds(model)
    with pytest.raises(InputError, match="two ranges"):
        load(Add(), inputs=[InputSpec.parse("x:batch x seq=..16"), InputSpec.parse("y:batch x seq=..8")])


# ---- symbol names -------------------------------------------------------------------------


class Pool(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.mean(-1) + y


def _pool_program() -> tuple[object, tuple[torch.Tensor, ...], tuple[dict[int, object], ...]]:
    batch, seq = Dim("batch"), Dim("seq", max=64)
    args = (torch.randn(3, 5), torch.randn(3))
    shapes = ({0: batch, 1: seq}, {0: batch})
    return torch.export.export(Pool(), args, dynamic_shapes=shapes), args, shapes


def _check_pool(model: ir.Model) -> None:
    assert [dims_of(v) for v in model.graph.inputs] == [["batch", "seq"], ["batch"]]
    for b, s in ((2, 7), (6, 3)):
        x, y = torch.randn(b, s), torch.randn(b)
        got = ort_outputs(model, {"x": x.numpy(), "y": y.numpy()})["output"]
        np.testing.assert_allclose(got, Pool()(x, y).numpy(), rtol=1e-5, atol=1e-6)


def test_live_program_keeps_the_dim_names_it_was_exported_with() -> None:
    ep, _, _ = _pool_program()
    model = load(ep)
    _check_pool(model)
    assert model_symbol_bounds(model)["seq"][1] == 64


def test_pt2_saved_with_its_dynamic_shapes_record_keeps_the_names(tmp_path: pathlib.Path) -> None:
    from torch._export.serde.dynamic_shapes import _dump_dynamic_shapes

    ep, args, shapes = _pool_program()
    record = json.dumps(_dump_dynamic_shapes(shapes, args, to_dict=True))
    path = tmp_path / "pool.pt2"
    torch.export.save(ep, str(path), extra_files={"dynamic_shapes.json": record})
    _check_pool(load(path, format="exported_program"))


def test_plain_pt2_has_no_names_but_specs_give_them(tmp_path: pathlib.Path) -> None:
    ep, _, _ = _pool_program()
    path = tmp_path / "pool.pt2"
    torch.export.save(ep, str(path))
    # torch.export.save keeps s0/s1 and their ranges, not the Dim names: defaults, shared and bounded.
    model = load(path, format="exported_program")
    assert [dims_of(v) for v in model.graph.inputs] == [["batch", "x_1"], ["batch"]]
    assert model_symbol_bounds(model)["x_1"][1] == 64
    _check_pool(load(path, format="exported_program", inputs=[InputSpec.parse("x:batch x seq"), InputSpec("y", ("batch",))]))


def test_load_pt2_is_still_importable_from_export() -> None:
    from converter.frontends.torch import export, pt2

    assert export.load_pt2 is pt2.load_pt2


# ---- sizes a guard excludes: cut off the nearer end of the range ---------------------------


class NeighbourProduct(nn.Module):
    """Each step times the next: at seq = 2 the two slices have one step, which torch.export cannot rule out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:] * x[:, :-1]


class CausalScores(nn.Module):
    """Scores masked by a 64-row causal table, as GPT-Neo slices it (the last row is a special case to torch.export)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.tril(torch.ones(POSITIONS, POSITIONS, dtype=torch.bool)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[1]
        return torch.where(self.mask[:s, :s], x @ x.transpose(1, 2), -1e9)


@pytest.mark.parametrize(("module", "bound", "lengths"), [
    (NeighbourProduct(), (3, None), (3, 9)),  # seq - 1 != 1: seq = 2 cut off the bottom
    (CausalScores(), (1, POSITIONS - 1), (5, POSITIONS - 1)),  # seq <= 64 and seq != 64: the top
])
def test_a_size_a_guard_excludes_is_cut_off_the_nearer_end(module: nn.Module, bound: tuple, lengths: tuple) -> None:
    model = load(module, inputs=[InputSpec.parse("x:batch x seq x 4")])
    assert model_symbol_bounds(model)["seq"] == bound
    for seq in lengths:
        x = torch.randn(2, seq, 4, generator=torch.Generator().manual_seed(seq))
        got = ort_outputs(model, {"x": x.numpy()})["output"]
        np.testing.assert_allclose(got, module(x).numpy(), rtol=1e-5, atol=1e-5)


def test_a_guard_inside_the_range_is_one_error_that_quotes_it() -> None:
    """Cutting seq = 20 off 1..64 would drop 19 sizes the user asked for: no retry, one error naming the guard."""
    from converter.frontends.torch.symbols import constraint_error, model_imposed_bounds

    error = Exception("Constraints violated (seq)! For more information, run with TORCH_LOGS=\"+dynamic\".\n"
                      "  - Not all values of seq = L['x'].size()[1] in the specified range seq <= 64 satisfy the "
                      "generated guard ((-19) + L['x'].size()[1]) != 1.\n")
    specs = [InputSpec.parse("x:batch x seq=..64 x 4")]
    assert model_imposed_bounds(error, specs) is None
    found = constraint_error(error, specs)
    assert found is not None and "needs ((-19) + seq) != 1 for some sizes of seq" in str(found)


def test_excluded_sizes_reads_offsets_from_the_guards() -> None:
    from converter.frontends.torch.symbols import excluded_sizes

    message = "\n".join([
        "Constraints violated (seq)!",
        "  - Not all values of seq = L['x'].size()[1] in the specified range satisfy the generated guard "
        "((-1) + L['x'].size()[1]) != 1.",
        "  - Not all values of n = L['y'].size()[0] in the specified range n <= 9 satisfy the generated guard "
        "L['y'].size()[0] != 9.",
        "  - Not all values of n = L['y'].size()[0] in the specified range satisfy the generated guard "
        "2 <= L['y'].size()[0] and L['y'].size()[0] <= 9",
    ])
    assert excluded_sizes(Exception(message)) == [("seq", 2), ("n", 9)]
