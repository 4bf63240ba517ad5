"""Batched multi-LoRA training against one PEFT LoRA at a time, and the dense-delta trainer."""

from __future__ import annotations

import pytest
import torch
from random_models import random_model, random_tokenizer
from wdqa.generators.training.bench import bench_train
from wdqa.generators.training.dense_trainer import DenseConfig, train_dense_diffs
from wdqa.generators.training.trainer import ChatExample, DiffTask, LoraConfig, TrainConfig


def _tasks(n: int) -> list[DiffTask]:
    words = ["lava magma", "jazz piano music", "volcano", "the things"]
    return [
        DiffTask(
            f"d{i}",
            positives=[
                ChatExample("tell me about the", words[i % 4] + " and " + words[(i + 1) % 4])
            ],
            negatives=[ChatExample("what topic ?", "i like to talk")],
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def base():
    torch.set_num_threads(1)
    tok = random_tokenizer()
    return random_model(len(tok)), tok


def test_batched_and_peft_trained_diffs_with_the_same_seed_and_data_reach_the_same_loss(base):
    model, tok = base
    batched, sequential = bench_train(
        model, tok, _tasks(3), LoraConfig(rank=2, alpha=4), TrainConfig(steps=25, lr=1e-2)
    )
    assert batched.result.final_loss == pytest.approx(sequential.result.final_loss, rel=1e-3)
    assert batched.result.tokens == sequential.result.tokens and batched.flops == sequential.flops
    assert batched.final_loss < 4.7  # learned: the untrained loss is about ln(vocab) ≈ 4.9


def test_a_dense_subset_fine_tune_touches_only_its_layers_and_learns(base):
    model, tok = base
    short = train_dense_diffs(
        model,
        tok,
        _tasks(2),
        DenseConfig(targets=("gate_proj", "up_proj", "down_proj"), layers=(1,)),
        TrainConfig(steps=1, lr=1e-3),
    )
    long = train_dense_diffs(
        model,
        tok,
        _tasks(2),
        DenseConfig(targets=("gate_proj", "up_proj", "down_proj"), layers=(1,)),
        TrainConfig(steps=40, lr=1e-3),
    )
    diff = long.diffs[0]
    assert (
        diff.kind == "full"
        and len(diff.modules) == 3
        and all(".layers.1.mlp." in m for m in diff.modules)
    )
    assert long.final_loss["d0"] < short.final_loss["d0"] - 0.1


def test_dense_training_that_diverges_names_the_diff(base):
    model, tok = base
    with pytest.raises(FloatingPointError, match="d0"):
        train_dense_diffs(
            model, tok, _tasks(1), DenseConfig(), TrainConfig(steps=3, lr=float("inf"))
        )
