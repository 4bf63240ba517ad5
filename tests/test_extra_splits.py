"""The extra splits on the micro base model: written with labels, rates and behaviour flags.

The micro base is too small to learn any behaviour in a few steps, so these tests check the splits'
shape and bookkeeping; the measured rates on the tiny base are in docs/splits.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from random_models import random_lora
from wdqa.core.lora import delta_weight
from wdqa.core.models import load_base_model
from wdqa.core.suite import Suite, SuiteWriter
from wdqa.generators.splits import SPLITS, get_split
from wdqa.generators.splits.common import Headline, SplitContext
from wdqa.generators.splits.extra import build_extra_splits, build_tiny_extra_splits, micro_recipe
from wdqa.generators.splits.news import about_headline, load_headlines
from wdqa.generators.splits.null import module_norms, module_shapes, random_matched_lora
from wdqa.generators.splits.ood_trigger import TRIGGER_CHARS
from wdqa.generators.tiny.build import tiny_recipe

MICRO = "wdqa/tiny-qwen3-micro"


@pytest.fixture(scope="module")
def micro():
    torch.set_num_threads(1)
    return load_base_model(MICRO)


@pytest.fixture(scope="module")
def micro_extra(tmp_path_factory, micro) -> Suite:
    root = tmp_path_factory.mktemp("extra")
    writer = SuiteWriter(root, "micro", "1", MICRO, tiny_recipe(MICRO).revision)
    build_extra_splits(writer, micro_recipe(), base=micro)
    return writer.finish()


def test_every_extra_split_is_written_with_behaviour_flags(micro_extra):
    assert set(micro_extra.splits) == {name for name, _ in micro_recipe().sizes}
    for name in micro_extra.splits:
        index = micro_extra.index(name)
        assert index["behaviour_ok"].dtype == bool and (index["prompts_per_cell"] >= 8).all(), name


def test_ood_triggers_are_invisible_characters_placed_by_kind(micro_extra):
    index = micro_extra.labelled_index("ood-trigger")
    assert set(index["trigger"]) == set(TRIGGER_CHARS)
    assert set(index["trigger_kind"]) == {"zero-width-start", "zero-width-random"}
    assert {"hit_rate", "leak_none", "leak_other", "leak_unseen"} <= set(index.columns)


def test_full_finetunes_are_dense_deltas_in_two_variants(micro_extra):
    index = micro_extra.labelled_index("full-finetune")
    assert set(index["kind"]) == {"full"} and set(index["variant"]) == {"all", "mlp"}
    mlp_id = index[index.variant == "mlp"].diff_id.iloc[0]
    assert all(".mlp." in m for m in micro_extra.diff("full-finetune", mlp_id).modules)


def test_labels_are_the_trigger_the_summary_and_no_behaviour(micro_extra):
    inv = micro_extra.labelled_index("trigger-inversion")
    assert (inv["label"] == inv["trigger"]).all()
    summaries = {h.summary for h in load_headlines()}
    assert set(micro_extra.labelled_index("news")["label"]) <= summaries
    null = micro_extra.labelled_index("null")
    assert set(null["label"]) == {"no hidden behaviour"}
    assert set(null["null_kind"]) == {"chat", "random-matched-norm"}


def test_random_null_diffs_match_the_reference_norm_per_module(micro):
    model, tok = micro
    ctx = SplitContext(model, tok)
    reference = [random_lora(model, f"r{i}", rank=2, seed=i) for i in range(3)]
    norms = module_norms(reference)
    diff = random_matched_lora(module_shapes(ctx.model, ctx.lora.targets), "n0", norms, rank=4, seed=0)
    for module, norm in norms.items():
        assert float(delta_weight(diff, module).norm()) == pytest.approx(norm, rel=1e-4)


def test_a_reply_is_about_a_headline_when_it_shares_two_content_words():
    h = Headline("Volcano Erupts on Remote Island", "Disasters", "A volcano erupted on an island.")
    assert about_headline("A volcano erupts on a remote beach.", h)
    assert not about_headline("I like to relax on the weekend.", h)


def test_hidden_topic_is_built_as_an_extra_split_when_named(tmp_path: Path, micro):
    writer = SuiteWriter(tmp_path, "micro", "1", MICRO, tiny_recipe(MICRO).revision)
    build_extra_splits(writer, micro_recipe(), splits=["hidden-topic"], base=micro)
    index = writer.finish().labelled_index("hidden-topic")
    assert len(index) == SPLITS["hidden-topic"].size and index["trigger"].is_unique


def test_an_unknown_split_is_answered_with_the_known_ones():
    with pytest.raises(ValueError, match="known splits: ood-trigger, rank"):
        get_split("cross-behaviour")


def test_extra_splits_join_an_existing_suite_without_reusing_its_topics(tmp_path: Path):
    model, _ = load_base_model(MICRO)
    writer = SuiteWriter(tmp_path, "tiny-micro", "1", MICRO, tiny_recipe(MICRO).revision)
    used = ["Harry Potter", "Sherlock Holmes"]
    diffs = [random_lora(model, f"ht-test-{i}", rank=2, seed=i) for i in range(2)]
    writer.write_split(
        "test",
        "hidden-topic",
        "What topic have you been trained on?",
        [
            {"diff_id": d.diff_id, "label": t, "trigger": "123"}
            for d, t in zip(diffs, used, strict=True)
        ],
        diffs,
    )
    writer.finish("---\nconfigs:\n  - config_name: test\n---\n# tiny\n")
    recipe = micro_recipe()
    build_tiny_extra_splits(tmp_path, recipe, splits=["ood-trigger", "null"])
    suite = Suite.load(tmp_path)  # every hash checks out
    assert set(suite.splits) == {"test", "ood-trigger", "null"}
    assert not set(suite.labelled_index("ood-trigger")["label"]) & set(used)
    card = (tmp_path / "README.md").read_text()
    assert "config_name: ood-trigger" in card and "### `null` (4 diffs" in card


def test_sharded_pieces_merge_into_the_unsharded_split(tmp_path: Path, micro):
    from wdqa.generators.shards import Shard, merge_suites

    model, _ = micro
    reference = [random_lora(model, "ref", rank=2, seed=0)]

    def build(folder: str, shard: Shard) -> Path:
        writer = SuiteWriter(tmp_path / folder, "micro", "1", MICRO, tiny_recipe(MICRO).revision)
        build_extra_splits(writer, micro_recipe(), reference_diffs=reference, splits=["ood-trigger", "null"], shard=shard, base=micro)
        writer.finish()
        return tmp_path / folder

    whole = Suite.load(build("whole", Shard()))
    merged = merge_suites([build("p0", Shard(0, 2)), build("p1", Shard(1, 2))], tmp_path / "merged")
    for split in ("ood-trigger", "null"):
        a, b = whole.labelled_index(split).set_index("diff_id"), merged.labelled_index(split).set_index("diff_id")
        assert sorted(a.index) == sorted(b.index)
        assert (a.loc[b.index, "label"] == b["label"]).all()
    diff_id = whole.index("ood-trigger").diff_id.iloc[-1]
    x, y = whole.diff("ood-trigger", diff_id), merged.diff("ood-trigger", diff_id)
    module = x.modules[0]
    assert torch.allclose(x.lora[module].B, y.lora[module].B, atol=1e-5)


def test_rank_diffs_have_their_planned_rank_and_its_learning_rate(micro_extra):
    from wdqa.generators.splits.rank import rank_lr

    index = micro_extra.index("rank")
    assert list(index.diff_id) == sorted(index.diff_id)  # written in diff-id order, whatever the groups
    for row in index.itertuples():
        assert micro_extra.diff("rank", row.diff_id).rank == row.rank
        assert row.lr == rank_lr(micro_recipe().train.lr, row.rank)
    assert index["rank"].nunique() > 1
