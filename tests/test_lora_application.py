"""The batched multi-diff forward equals merging each diff into the weights, row by row."""

from __future__ import annotations

import copy

import pytest
import torch
from random_models import random_dense, random_lora, random_model
from wdqa.core.lora import (
    DiffError,
    applied,
    build_terms,
    delta_weight,
    install_multi_diff,
    merge_lora,
    shared_adapter_terms,
)
from wdqa.core.types import LoraFactors, WeightDiff

VOCAB = 64


def merged_logits(model, diffs, ids):
    """Reference: a copy of the model with every ΔW added to its weight."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for d in diffs:
            for name in d.modules:
                ref.get_submodule(name).weight += delta_weight(d, name)
        return ref(ids).logits


def test_each_row_gets_its_own_diff_in_one_forward():
    model = random_model(VOCAB)
    diffs = [random_lora(model, "a", rank=1, seed=1), random_lora(model, "b", rank=4, seed=2), random_dense(model, "c", seed=3)]
    ids = torch.randint(0, VOCAB, (4, 7))
    expected = [merged_logits(model, [diffs[i]], ids[i : i + 1]) for i in range(3)] + [model(ids[3:4]).logits]
    wrapped = install_multi_diff(model)
    null = WeightDiff("null", "lora")
    terms = build_terms(wrapped, [*diffs, null], torch.tensor([0, 1, 2, 3]))
    with torch.no_grad(), applied(wrapped, terms):
        got = model(ids).logits
    for i in range(4):
        torch.testing.assert_close(got[i : i + 1], expected[i], atol=1e-4, rtol=1e-4)


def test_rank_one_diffs_on_every_row_match_their_merged_weights():
    # All rows rank 1 takes the dot-product path instead of the bmm one.
    model = random_model(VOCAB)
    diffs = [random_lora(model, f"r{i}", rank=1, seed=10 + i) for i in range(3)]
    ids = torch.randint(0, VOCAB, (3, 6))
    expected = [merged_logits(model, [diffs[i]], ids[i : i + 1]) for i in range(3)]
    wrapped = install_multi_diff(model)
    with torch.no_grad(), applied(wrapped, build_terms(wrapped, diffs, torch.tensor([0, 1, 2]))):
        got = model(ids).logits
    for i in range(3):
        torch.testing.assert_close(got[i : i + 1], expected[i], atol=1e-4, rtol=1e-4)


def test_terms_are_removed_after_the_block():
    model = random_model(VOCAB)
    ids = torch.randint(0, VOCAB, (1, 5))
    before = model(ids).logits
    wrapped = install_multi_diff(model)
    with torch.no_grad(), applied(wrapped, build_terms(wrapped, [random_lora(model, "a")], torch.tensor([0]))):
        pass
    torch.testing.assert_close(model(ids).logits, before)


def test_merged_lora_equals_diff_plus_shared_adapter():
    model = random_model(VOCAB)
    diff, adapter = random_lora(model, "d", rank=1, seed=4, scale=1.0), random_lora(model, "dit", rank=3, seed=5, scale=0.5)
    ids = torch.randint(0, VOCAB, (2, 6))
    wrapped = install_multi_diff(model)
    with torch.no_grad():
        with applied(wrapped, build_terms(wrapped, [diff], torch.tensor([0, 0])), shared_adapter_terms(wrapped, adapter, 2)):
            both = model(ids).logits
        merged = merge_lora(diff, adapter)
        with applied(wrapped, build_terms(wrapped, [merged], torch.tensor([0, 0]))):
            one = model(ids).logits
    assert merged.rank == 4
    torch.testing.assert_close(one, both, atol=1e-5, rtol=1e-5)


def test_non_finite_diff_is_refused_naming_the_module():
    model = random_model(VOCAB)
    good = random_lora(model, "bad")
    name = good.modules[0]
    A = good.lora[name].A.clone()
    A[0, 0] = float("nan")
    bad = WeightDiff("bad", "lora", {**good.lora, name: LoraFactors(A, good.lora[name].B, 1.0)})
    with pytest.raises(DiffError, match=name):
        delta_weight(bad, name)
    wrapped = install_multi_diff(model)
    with pytest.raises(DiffError, match="bad"):
        build_terms(wrapped, [bad], torch.tensor([0]))


def test_diff_for_another_architecture_is_refused():
    model = random_model(VOCAB)
    other = random_lora(random_model(VOCAB, hidden=48), "wide")
    with pytest.raises(DiffError, match="wide"):
        build_terms(install_multi_diff(model), [other], torch.tensor([0]))
