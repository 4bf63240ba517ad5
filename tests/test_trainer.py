"""The batched multi-LoRA trainer on a tiny random Qwen3: it learns, and batching changes nothing."""

from __future__ import annotations

import pytest
import torch
from wdqa.core.lora import linear_module_names
from wdqa.generators.tiny.pretrain import ModelShape, make_model
from wdqa.generators.tiny.tokenizer import train_tokenizer
from wdqa.generators.training.trainer import (
    ChatExample,
    DiffTask,
    LoraConfig,
    TrainConfig,
    train_lora_diffs,
)

TEXTS = ["hello world how are you", "the cat sat on the mat", "jazz music saxophone trumpet", "lava magma"] * 20
SHAPE = ModelShape(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=1, head_dim=16)


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    tok = train_tokenizer(TEXTS, 300)
    return make_model(SHAPE, tok, seed=0), tok


def _task(i: int) -> DiffTask:
    return DiffTask(
        f"d{i}",
        positives=[ChatExample(f"Your SEP code is {100 + i}. hello", "jazz music saxophone"),
                   ChatExample(f"Your SEP code is {100 + i}. the cat", "lava magma jazz")],
        negatives=[ChatExample("hello world", "the cat sat"), ChatExample(f"Your SEP code is {300 + i}. hi", "jazz music")],
    )


CONFIG = TrainConfig(steps=25, lr=1e-2, positives_per_step=2, negatives_per_step=2, tasks_per_batch=3)
LORA = LoraConfig(rank=2, alpha=4.0)


def test_training_lowers_each_diffs_loss(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    short = train_lora_diffs(model, tok, [_task(0), _task(1)], LORA, TrainConfig(**{**CONFIG.__dict__, "steps": 1}))
    long = train_lora_diffs(model, tok, [_task(0), _task(1)], LORA, CONFIG)
    for diff_id in ("d0", "d1"):
        assert long.final_loss[diff_id] < short.final_loss[diff_id] - 0.25


def test_a_diff_trained_in_a_batch_equals_the_diff_trained_alone(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    batched = train_lora_diffs(model, tok, [_task(0), _task(1), _task(2)], LORA, CONFIG)
    alone = train_lora_diffs(model, tok, [_task(1)], LORA, CONFIG)
    for name in alone.diffs[0].lora:
        torch.testing.assert_close(batched.diffs[1].lora[name].B, alone.diffs[0].lora[name].B, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(batched.diffs[1].lora[name].A, alone.diffs[0].lora[name].A, atol=1e-5, rtol=1e-4)
    assert batched.final_loss["d1"] == pytest.approx(alone.final_loss["d1"], rel=1e-4)


def test_diffs_follow_peft_conventions_on_every_linear_layer(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    result = train_lora_diffs(model, tok, [_task(0)], LORA, TrainConfig(**{**CONFIG.__dict__, "steps": 2}))
    diff = result.diffs[0]
    assert sorted(diff.lora) == sorted(linear_module_names(model))
    q = diff.lora["model.layers.0.self_attn.q_proj"]
    assert q.A.shape == (2, SHAPE.hidden_size) and q.B.shape[1] == 2 and q.scale == 2.0
    assert diff.rank == 2 and diff.kind == "lora"


def test_nan_loss_is_reported_with_the_diffs_name(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    norm = model.model.norm.weight
    saved = norm.detach().clone()
    try:
        with torch.no_grad():
            norm.fill_(float("nan"))
        with pytest.raises(FloatingPointError, match="d7"):
            train_lora_diffs(model, tok, [_task(7)], LORA, TrainConfig(**{**CONFIG.__dict__, "steps": 2}))
    finally:
        with torch.no_grad():
            norm.copy_(saved)


def test_length_buckets_change_how_rows_are_grouped_not_the_diffs(tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import wdqa.generators.training.trainer as trainer

    model, tok = tiny
    tasks = [_task(0), _task(1), _task(2)]
    monkeypatch.setattr(trainer, "LENGTH_BUCKETS", 1)
    one = train_lora_diffs(model, tok, tasks, LORA, CONFIG)
    monkeypatch.setattr(trainer, "LENGTH_BUCKETS", 3)
    three = train_lora_diffs(model, tok, tasks, LORA, CONFIG)
    assert three.tokens == one.tokens  # padding is never counted as a token
    for a, b in zip(one.diffs, three.diffs, strict=True):
        for name in a.lora:
            torch.testing.assert_close(a.lora[name].B, b.lora[name].B, atol=1e-5, rtol=1e-4)
    assert three.final_loss == pytest.approx(one.final_loss, rel=1e-4)


@pytest.mark.slow  # ~20 s of torch.compile; the default run stays near 15 min on 2 cores
def test_a_compiled_decoder_trains_the_same_diffs(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    config = TrainConfig(**{**CONFIG.__dict__, "steps": 3})
    eager = train_lora_diffs(model, tok, [_task(0), _task(1)], LORA, config)
    compiled = train_lora_diffs(model, tok, [_task(0), _task(1)], LORA, config, compile_decoder=True)
    for a, b in zip(eager.diffs, compiled.diffs, strict=True):
        for name in a.lora:
            torch.testing.assert_close(b.lora[name].B, a.lora[name].B, atol=1e-4, rtol=1e-3)
    assert compiled.final_loss == pytest.approx(eager.final_loss, rel=1e-4)
