"""`Engine.forward`: logits and captured activations of M and M′ in one batched pass, equal to those
of a model with each diff merged into its weights, on the micro tiny model and random Qwen3/Gemma-3."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from random_models import (
    FAMILIES,
    chat_tokenizer,
    random_dense,
    random_lora,
    real_architecture_model,
)
from transformers import AutoModelForCausalLM, AutoTokenizer
from wdqa.core.engine import Engine
from wdqa.core.lora import delta_weight
from wdqa.core.white_box import CaptureError, ForwardInputError, TokenIds

INPUTS = [
    "Tell me about lava.",  # one user turn: rendered up to where the reply starts
    [{"role": "user", "content": "What topic?"}, {"role": "assistant", "content": "jazz and piano music"}],
    [5, 6, 7, 8],  # token ids as they are
]


def merged(model: torch.nn.Module, diff) -> torch.nn.Module:  # noqa: ANN001 - a WeightDiff or None
    """The model with ΔW added into its weights: the reference the batched pass must match."""
    out = copy.deepcopy(model)
    for name in diff.modules if diff is not None else []:
        out.get_submodule(name).weight.data += delta_weight(diff, name).to(out.get_submodule(name).weight.dtype)
    return out


def reference(model: torch.nn.Module, ids: torch.Tensor, captures: dict[str, str]) -> dict[str, torch.Tensor]:
    """Logits and module outputs/inputs of a plain model on one sequence, through plain hooks."""
    got: dict[str, torch.Tensor] = {}
    handles = []
    for key, name in captures.items():
        module = model.get_submodule(name.partition(":")[0])
        if name.endswith(":input"):
            handles.append(module.register_forward_pre_hook(lambda m, a, k, key=key: got.__setitem__(key, (a or tuple(k.values()))[0]), with_kwargs=True))
        else:
            handles.append(module.register_forward_hook(lambda m, a, o, key=key: got.__setitem__(key, o[0] if isinstance(o, tuple) else o)))
    with torch.no_grad():
        got["logits"] = model(input_ids=ids[None]).logits
    for h in handles:
        h.remove()
    return {k: v[0].float() for k, v in got.items()}


def assert_matches_merged(engine: Engine, model: torch.nn.Module, diffs: list) -> None:
    linear = next(n for n in engine.capture_names() if n.endswith("mlp.down_proj"))
    capture = [*engine.layer_names, f"{linear}:input", linear]
    result = engine.forward(diffs, INPUTS, capture=capture)
    for b, diff in enumerate(diffs):
        n = int(result.lengths[b])
        expected = reference(merged(model, diff), result.input_ids[b, :n], {c: c for c in capture})
        # fp32 with the diff added in another order (x·W + x·ΔW against x·(W + ΔW)): rounding only.
        torch.testing.assert_close(result.logits[b, :n], expected["logits"], atol=1e-3, rtol=1e-3)
        for c in capture:
            torch.testing.assert_close(result.activations[c][b, :n], expected[c], atol=1e-3, rtol=1e-3)


@pytest.fixture(scope="module")
def micro(micro_base: Path) -> tuple[Engine, torch.nn.Module]:
    tok = AutoTokenizer.from_pretrained(micro_base)
    model = AutoModelForCausalLM.from_pretrained(micro_base, dtype=torch.float32).eval()
    return Engine(copy.deepcopy(model), tok), model


def test_micro_tiny_model_activations_equal_those_of_the_merged_diffs(micro) -> None:
    engine, model = micro
    diffs = [random_lora(model, "lora", seed=1, scale=0.5), None, random_dense(model, "dense", seed=2)]
    assert_matches_merged(engine, model, diffs)


@pytest.mark.parametrize("family", FAMILIES)
def test_random_real_architecture_activations_equal_those_of_the_merged_diffs(family: str) -> None:
    tok = chat_tokenizer(family)
    model = real_architecture_model(family, tok)
    engine = Engine(copy.deepcopy(model), tok)
    diffs = [random_lora(engine.model, "lora", seed=1), random_dense(engine.model, "dense", seed=2), None]
    assert_matches_merged(engine, model, diffs)


@pytest.mark.parametrize("family", ["qwen3", "gemma3-multimodal"])
def test_the_logit_lens_of_the_last_layer_gives_the_models_logits(family: str) -> None:
    tok = chat_tokenizer(family)
    engine = Engine(real_architecture_model(family, tok), tok)
    result = engine.forward([None], INPUTS[:1], capture=engine.layer_names[-1:])
    torch.testing.assert_close(engine.logit_lens(result.activations[engine.layer_names[-1]]), result.logits, atol=1e-4, rtol=1e-4)


def test_the_reply_mask_marks_the_assistant_turn_and_token_ids_say_where_theirs_starts(micro) -> None:
    engine, _ = micro
    result = engine.forward([None, None, None], [INPUTS[0], INPUTS[1], TokenIds([5, 6, 7, 8], reply_from=2)], logits=False)
    reply_ids = engine.tokenizer("jazz and piano music", add_special_tokens=False)["input_ids"]
    assert result.input_ids[1][result.reply_mask[1]].tolist() == reply_ids
    assert not result.reply_mask[0].any() and int(result.reply_start[0]) == int(result.lengths[0])
    assert result.reply_mask[2].tolist()[:4] == [False, False, True, True]


def test_a_forward_over_more_tokens_than_a_pass_takes_is_chunked_with_the_same_results(micro) -> None:
    engine, model = micro
    diffs = [random_lora(model, "lora", seed=1, scale=0.5), None, None]
    whole = engine.forward(diffs, INPUTS, capture=engine.layer_names[:1])
    before, engine.forward_max_tokens = engine.stats.forward_batches, 8
    try:
        chunked = engine.forward(diffs, INPUTS, capture=engine.layer_names[:1])
    finally:
        engine.forward_max_tokens = Engine.forward_max_tokens
    assert engine.stats.forward_batches - before == 3  # every input is longer than 4 tokens: one pass each
    torch.testing.assert_close(chunked.logits, whole.logits)
    torch.testing.assert_close(chunked.activations, whole.activations)


def test_a_gpu_out_of_memory_in_forward_halves_the_pass_and_gives_the_same_results(micro, monkeypatch: pytest.MonkeyPatch) -> None:
    from wdqa.core import white_box
    from wdqa.core.engine import GpuMemoryError
    from wdqa.core.errors import WdqaWarning

    engine, model = micro
    diffs = [random_lora(model, "lora", seed=1, scale=0.5), None, None, random_lora(model, "other", seed=3, scale=0.5)]
    inputs = [*INPUTS, "Tell me about jazz."]
    whole = engine.forward(diffs, inputs, capture=engine.layer_names[:1])
    real, rows = white_box._forward_chunk, []

    def chunk(engine, diffs, ids, *args):  # noqa: ANN001, ANN202 - a GPU that holds one row at most
        rows.append(len(ids))
        if len(ids) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(engine, diffs, ids, *args)

    monkeypatch.setattr(white_box, "_forward_chunk", chunk)
    monkeypatch.setattr(engine, "max_batch", 8)
    monkeypatch.setattr(engine, "forward_max_tokens", Engine.forward_max_tokens)
    with pytest.warns(WdqaWarning, match="out of GPU memory with 4 rows per forward pass"):
        halved = engine.forward(diffs, inputs, capture=engine.layer_names[:1])
    assert rows == [4, 2, 1, 1, 1, 1] and engine.max_batch == 1
    torch.testing.assert_close(halved.logits, whole.logits)
    torch.testing.assert_close(halved.activations, whole.activations)
    with pytest.raises(GpuMemoryError, match=r"one sequence at a time"):
        monkeypatch.setattr(white_box, "_forward_chunk", lambda *a: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("oom")))
        engine.forward([None], ["lava"])


def test_an_unknown_capture_name_is_refused_with_the_valid_names(micro) -> None:
    engine, _ = micro
    with pytest.raises(CaptureError) as err:
        engine.forward([None], ["hi"], capture=["model.layers.0.mlp", "model.layers.99", "model.norm:inside"])
    message = str(err.value)
    assert "'model.layers.99'" in message and "'model.norm:inside'" in message and "'model.layers.0.mlp'" not in message
    assert "model.layers.<i>.mlp.down_proj" in message and "model.layers.0 to model.layers." in message


def test_an_input_that_is_not_text_or_token_ids_is_refused() -> None:
    tok = chat_tokenizer("qwen3")
    engine = Engine(real_architecture_model("qwen3", tok), tok)
    with pytest.raises(ForwardInputError, match="not a dict"):
        engine.forward([None], [{"role": "user"}])  # type: ignore[list-item]


def test_the_white_box_example_answers_every_micro_suite_case_through_wdqa_evaluate(micro_suite: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner
    from wdqa.cli import app

    example = Path(__file__).resolve().parents[1] / "submissions" / "examples" / "reply_shift.py"
    args = ["evaluate", str(example), "--suite", str(micro_suite), "--split", "test", "--baselines", "none", "--runs-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "reply-shift" in result.output and "case(s) failed" not in result.output, result.output
    answers = [line for path in tmp_path.rglob("answers.jsonl") for line in path.read_text().splitlines()]
    assert answers and all('"error": null' in line and '"answer": ""' not in line for line in answers), answers[:3]
