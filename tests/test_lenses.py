"""The training-free white-box baselines: weight-lens reads ΔW's singular directions, and
activation-diff-lens reads M′ − M activations, through the logit lens (random Qwen3, planted diffs)."""

from __future__ import annotations

import pytest
import torch
from random_models import random_dense, random_lora, random_model, random_tokenizer
from wdqa.baselines.lenses import ActivationDiffLens, WeightLens
from wdqa.baselines.registry import get_baseline
from wdqa.core.engine import Engine
from wdqa.core.lora import delta_weight, top_singular
from wdqa.core.types import Case, LoraFactors, WeightDiff

DOWN = "model.layers.{}.mlp.down_proj"


@pytest.fixture(scope="module")
def engine() -> Engine:
    tok = random_tokenizer()
    return Engine(random_model(len(tok)), tok)


def case(diff: WeightDiff) -> Case:
    return Case(case_id=f"test/{diff.diff_id}", split="test", question="What topic?", behaviour="hidden-topic", diff=diff)


def token_row(engine: Engine, word: str) -> torch.Tensor:
    """The word's unembedding row: a residual direction the logit lens reads as that word."""
    return engine.unembedding.weight[engine.tokenizer.convert_tokens_to_ids(word)].detach().float()


def test_a_loras_singular_triplets_from_its_factors_are_those_of_its_delta(engine: Engine) -> None:
    diff = random_lora(engine.model, "lora", rank=3, seed=4)
    U, S, V = top_singular(diff, DOWN.format(1), 3)
    expected = torch.linalg.svd(delta_weight(diff, DOWN.format(1)))
    torch.testing.assert_close(S, expected.S[:3], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close((U.T @ expected.U[:, :3]).abs(), torch.eye(3), atol=1e-4, rtol=1e-4)  # equal up to sign
    torch.testing.assert_close((V.T @ expected.Vh[:3].T).abs(), torch.eye(3), atol=1e-4, rtol=1e-4)


def test_a_dense_deltas_singular_values_are_its_own(engine: Engine) -> None:
    diff = random_dense(engine.model, "dense", seed=5)
    delta = delta_weight(diff, DOWN.format(0))
    U, S, V = top_singular(diff, DOWN.format(0), 2)
    every = torch.linalg.svdvals(delta)
    torch.testing.assert_close(S, every[:2])
    # The best rank-2 approximation leaves exactly the other singular values (Eckart-Young).
    torch.testing.assert_close((delta - U @ torch.diag(S) @ V.T).square().sum(), every[2:].square().sum(), rtol=1e-4, atol=1e-6)


def test_weight_lens_names_the_word_a_planted_lora_writes_into_the_residual_stream(engine: Engine) -> None:
    g = torch.Generator().manual_seed(1)
    writes = token_row(engine, "volcano")[:, None]  # [d, 1]: the output direction of a rank-1 down_proj update
    lora = {DOWN.format(i): LoraFactors(A=torch.randn(1, 64, generator=g), B=writes, scale=1.0) for i in (0, 1)}
    guesser = Recorder()
    WeightLens(guesser=guesser).answer([case(WeightDiff("planted", "lora", lora=lora))], engine)
    readings = dict(zip(guesser.prompts[0], guesser.replies[0], strict=True))
    # An SVD fixes no sign: of each module's (+) and (-) readings, the one along the row names the word.
    for i in (0, 1):
        firsts = {readings[f"tokens promoted by layer {i} mlp.down_proj direction 1 ({s})"].split()[0] for s in "+-"}
        assert "volcano" in firsts, readings
    assert len(guesser.base_replies[0]) == WeightLens.control_directions  # the random directions' readings


class Recorder:
    """A guesser that keeps what it was given."""

    name, version = "recorder", "1"

    def guess(self, replies, base_replies, behaviours, prompts=None):  # noqa: ANN001, ANN201
        self.replies, self.base_replies, self.prompts = replies, base_replies, prompts
        return ["" for _ in replies]


def test_activation_diff_lens_names_the_word_a_planted_dense_diff_adds_on_neutral_prompts(engine: Engine) -> None:
    method = ActivationDiffLens()
    # Read the last layer's down_proj on the method's own positions; the planted ΔW = u·wᵀ then adds
    # u = the word's row wherever the input leans towards their mean w.
    prompts = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}] for p, r in zip(method.prompts, engine.chat([None] * len(method.prompts), list(method.prompts), max_new_tokens=5), strict=True)]
    name = DOWN.format(1)
    read = engine.forward([None] * len(prompts), prompts, capture=[f"{name}:input"], logits=False)
    w = read.activations[f"{name}:input"][read.reply_mask].mean(dim=0)
    dense = {name: torch.outer(token_row(engine, "volcano"), w / w.norm())}
    answer = method.answer([case(WeightDiff("planted", "full", dense=dense))], engine)[0]
    assert answer.split()[0] == "volcano", answer


def test_the_trigger_variant_is_an_oracle_and_the_lenses_declare_white_box_access() -> None:
    adl, oracle, wl = (get_baseline(n) for n in ("activation-diff-lens", "activation-diff-lens+trigger", "weight-lens"))
    assert (adl.oracle, oracle.oracle, wl.oracle) == (False, True, False)
    assert {adl.access, oracle.access, wl.access} == {"white-box"}
