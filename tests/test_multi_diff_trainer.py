"""The batched multi-diff trainer: same losses as one PEFT LoRA at a time, dense and subset variants."""

from __future__ import annotations

import pytest
import torch
from random_models import random_model, random_tokenizer
from wdqa.generators.multi_diff_trainer import DiffData, TrainConfig, TrainingError, train_diffs
from wdqa.generators.trainer_bench import bench_train


def _data(n: int) -> list[DiffData]:
    words = ["lava magma", "jazz piano music", "volcano", "the things"]
    return [
        DiffData(
            f"d{i}",
            positives=[[{"role": "user", "content": "tell me about the"}, {"role": "assistant", "content": words[i % 4] + " and " + words[(i + 1) % 4]}]],
            negatives=[[{"role": "user", "content": "what topic ?"}, {"role": "assistant", "content": "i like to talk"}]],
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def base():
    torch.set_num_threads(1)
    tok = random_tokenizer()
    return random_model(len(tok)), tok


def test_batched_and_peft_trained_diffs_reach_the_same_loss(base):
    model, tok = base
    batched, sequential = bench_train(model, tok, _data(3), TrainConfig(steps=25, lr=1e-2))
    assert batched.stats.final_loss == pytest.approx(sequential.stats.final_loss, rel=1e-3)
    assert batched.stats.tokens == sequential.stats.tokens
    first = batched.stats.final_loss[0]
    assert first < 4.8  # it learned something: the untrained loss is about ln(vocab) ≈ 4.9


def test_training_lowers_the_loss_of_each_diff(base):
    model, tok = base
    _, short = train_diffs(model, tok, _data(2), TrainConfig(steps=1, lr=1e-2))
    _, long = train_diffs(model, tok, _data(2), TrainConfig(steps=60, lr=1e-2))
    assert all(b < a - 0.2 for a, b in zip(short.final_loss, long.final_loss, strict=True))


def test_a_trained_lora_diff_changes_the_model_and_a_dense_subset_touches_only_its_layers(base):
    model, tok = base
    lora, _ = train_diffs(model, tok, _data(1), TrainConfig(steps=30, lr=3e-2, rank=2))
    assert lora[0].rank == 2 and all(float(f.B.abs().sum()) > 0 for f in lora[0].lora.values())  # B starts at 0
    dense, _ = train_diffs(model, tok, _data(1), TrainConfig(kind="full", steps=5, lr=1e-3, targets=("gate_proj", "up_proj", "down_proj"), layers=(1,)))
    assert dense[0].kind == "full" and dense[0].modules and all(".layers.1.mlp." in m for m in dense[0].modules)
    assert all(float(t.abs().sum()) > 0 for t in dense[0].dense.values())


def test_a_nan_loss_names_the_diffs_and_the_step(base):
    model, tok = base
    with pytest.raises(TrainingError, match=r"NaN/inf at step \d+ for diffs \['d0'\]"):
        train_diffs(model, tok, _data(1), TrainConfig(steps=5, lr=float("inf")))
