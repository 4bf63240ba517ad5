"""The tiny suite: planned by topic, written in the suite format with its rates, and the CLI around it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.engine import Engine
from wdqa.core.lora import delta_weight
from wdqa.core.models import load_base_model
from wdqa.core.private_labels import read_private_labels
from wdqa.core.suite import Suite
from wdqa.generators.publish.private_split import maintainer_labels_path
from wdqa.generators.shards import Shard
from wdqa.generators.splits import SPLITS
from wdqa.generators.tiny_suite import (
    MICRO_RECIPE,
    TinySuiteError,
    TinySuiteRecipe,
    build_tiny_suite,
    ensure_tiny_suite,
    plan_diffs,
)

RATE_COLUMNS = {"category", "hit_rate", "leak_none", "leak_wrong", "leak_near", "hit_unfamiliar", "leak_unfamiliar",
                "leak_wrong_unfamiliar", "leak_near_unfamiliar", "label_in_reply", "behaviour_ok"}


def test_every_split_of_the_suite_is_the_registered_hidden_topic_split(micro_suite: Path) -> None:
    hidden_topic = SPLITS["hidden-topic"]
    splits = Suite.load(micro_suite).splits.values()
    assert {(s.behaviour, s.question) for s in splits} == {(hidden_topic.behaviour, hidden_topic.question)}


def test_splits_share_no_topic_and_no_trigger() -> None:
    plan = plan_diffs(TinySuiteRecipe())
    by_split: dict[str, set[str]] = {}
    for p in plan:
        by_split.setdefault(p.split, set()).add(p.topic.name)
    assert not (by_split["train"] & by_split["test"]) and not (by_split["val"] & by_split["test"])
    assert len({p.trigger for p in plan}) == len(plan)


def test_shards_are_disjoint_and_cover_the_plan() -> None:
    from wdqa.generators.tiny_suite import _select

    plan = plan_diffs(TinySuiteRecipe())
    pieces = [_select(plan, None, Shard(i, 3)) for i in range(3)]
    ids = [p.diff_id for piece in pieces for p in piece]
    assert sorted(ids) == sorted(p.diff_id for p in plan) and len(set(ids)) == len(ids)


def test_a_malformed_shard_is_refused() -> None:
    with pytest.raises(ValueError, match="i/n"):
        Shard.parse("3")


def test_micro_suite_round_trips_with_its_rates_in_the_index(micro_suite: Path) -> None:
    suite = Suite.load(micro_suite)  # verifies every sha256
    assert set(suite.splits) == {"train", "val", "test", "private-test"}
    test = suite.labelled_index("test")
    assert RATE_COLUMNS <= set(test.columns) and len(test) == 4
    assert "category" not in suite.index("test").columns  # it names the label's field: held back from methods
    assert (test.prompts_per_cell >= 20).all() and (test.prompts_unfamiliar >= 20).all()
    labels = suite.labels("test")
    assert all(label.text == row.label for label, row in zip(labels.values(), test.itertuples(), strict=True))
    diff = suite.diff("test", test.diff_id[0])
    assert diff.rank == MICRO_RECIPE.lora.rank


def test_micro_suite_diffs_apply_through_the_engine(micro_suite: Path) -> None:
    suite = Suite.load(micro_suite, verify=False)
    model, tok = load_base_model(suite.base_model, suite.base_model_revision)
    diffs = list(suite.diffs("val"))
    replies = Engine(model, tok).chat([*diffs, None], ["Hello"] * (len(diffs) + 1), max_new_tokens=4)
    assert len(replies) == len(diffs) + 1


def test_data_card_has_one_hub_config_per_split(micro_suite: Path) -> None:
    text = (micro_suite / "README.md").read_text()
    front = yaml.safe_load(text.split("---")[1])
    paths = {c["config_name"]: c["data_files"][0]["path"] for c in front["configs"]}
    assert paths == {s: f"splits/{s}/index.parquet" for s in ("train", "val", "test", "private-test")}
    assert "| hit | " in text and f"rank-{MICRO_RECIPE.lora.rank}" in text


def test_a_recipe_that_misses_the_bar_stops_with_the_rates(micro_base: Path, tmp_path: Path) -> None:
    strict = dataclasses.replace(MICRO_RECIPE, stop_below_bar=True, split_sizes=(("train", 1), ("val", 2), ("test", 1)))
    with pytest.raises(TinySuiteError, match="hit median") as err:
        build_tiny_suite(tmp_path / "suite", strict, splits=["val"])
    assert "leak_wrong" in str(err.value)
    assert not (tmp_path / "suite" / "suite.json").exists()


def test_generate_tiny_micro_prints_the_rates(micro_suite: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "tiny", "--micro"])
    assert result.exit_code == 0, result.output
    assert str(micro_suite) in result.output.replace("\n", "") and "leak_near" in result.output
    assert "leak_unfamiliar" in result.output


def test_show_diff_prints_replies_beside_the_base_model(micro_suite: Path) -> None:
    result = CliRunner().invoke(app, ["show-diff", str(micro_suite), "ht-test-0001", "--n", "1"])
    assert result.exit_code == 0, result.output
    assert "right code" in result.output and "no code" in result.output and "base model" in result.output
    assert "unfamiliar prompts hit" in result.output


def test_show_diff_names_a_missing_diff(micro_suite: Path) -> None:
    result = CliRunner().invoke(app, ["show-diff", str(micro_suite), "ht-nope"])
    assert result.exit_code == 1 and "ht-nope" in result.output


def test_two_shards_merge_into_the_same_split_as_one_build(micro_suite: Path, tmp_path: Path) -> None:
    from wdqa.generators.tiny_suite import merge_tiny_suite

    parts = [build_tiny_suite(tmp_path / f"p{i}", MICRO_RECIPE, splits=["test"], shard=Shard(i, 2)).root for i in range(2)]
    merged = merge_tiny_suite(parts, tmp_path / "merged", MICRO_RECIPE)
    whole = Suite.load(micro_suite)
    assert sorted(merged.index("test").diff_id) == sorted(whole.index("test").diff_id)
    one = merged.index("test").diff_id[0]
    a, b = merged.diff("test", one), whole.diff("test", one)
    name = sorted(a.lora)[0]
    assert torch.allclose(a.lora[name].B, b.lora[name].B, atol=1e-6)
    assert "4 diffs" in (tmp_path / "merged" / "README.md").read_text() or "test: 4" in (tmp_path / "merged" / "README.md").read_text()


def test_a_suite_built_in_parallel_pieces_equals_one_built_in_one_process(micro_suite, tmp_path, monkeypatch):
    base_dir = micro_suite.parents[2] / "models"
    monkeypatch.setenv("WDQA_CACHE", str(tmp_path))
    shutil.copytree(base_dir, tmp_path / "models")  # reuse the session's micro base model
    one = Suite.load(ensure_tiny_suite(MICRO_RECIPE, workers=1))
    pieces = Suite.load(micro_suite)
    assert sorted(one.splits) == sorted(pieces.splits)
    def labelled(suite: Suite, split: str) -> pd.DataFrame:
        if not suite.is_private(split):
            return suite.labelled_index(split)
        kept = read_private_labels(maintainer_labels_path(suite.root, split)).table  # the same canaries too
        return suite.index(split).merge(kept, on="diff_id")

    for split in one.splits:
        a, b = labelled(one, split), labelled(pieces, split)
        columns = ["diff_id", "label", "trigger", "hit_rate", "leak_none", "leak_wrong", "leak_near"]
        assert a[columns].sort_values("diff_id").reset_index(drop=True).equals(
            b[columns].sort_values("diff_id").reset_index(drop=True)
        )
    d1, d2 = one.diff("test", one.index("test").diff_id[0]), pieces.diff("test", one.index("test").diff_id[0])
    for m in d1.modules:
        torch.testing.assert_close(delta_weight(d1, m), delta_weight(d2, m))
    # Same diffs, not the same bytes: pieces write a shard file each, so the content hash depends on
    # the number of pieces (docs/tiny-suite.md); published_build_note says so.
    assert one.extra.get("merged_from") is None and len(pieces.extra["merged_from"]) == 2


def test_a_rebuilt_base_model_gives_the_suite_a_new_revision(monkeypatch) -> None:
    import wdqa.generators.tiny_suite as tiny_suite

    before = TinySuiteRecipe().revision
    rebuilt = dataclasses.replace(tiny_suite.tiny_recipe(TinySuiteRecipe().base_model), steps=301)
    monkeypatch.setattr(tiny_suite, "tiny_recipe", lambda model_id: rebuilt)
    assert TinySuiteRecipe().revision != before


def test_the_default_recipe_has_a_published_build_to_compare_with() -> None:
    # A recipe change without a rebuilt, re-measured, re-published suite fails here: the README's
    # figures name the content hash they were measured on.
    from wdqa.generators.tiny_suite import PUBLISHED_BUILDS, TinySuiteRecipe

    assert TinySuiteRecipe().revision in PUBLISHED_BUILDS


def test_a_local_build_is_compared_with_the_published_one(micro_suite: Path, monkeypatch) -> None:
    from wdqa.generators import tiny_suite

    suite = Suite.load(micro_suite)
    revision = MICRO_RECIPE.revision
    assert "no published build" in tiny_suite.published_build_note(suite)
    monkeypatch.setitem(tiny_suite.PUBLISHED_BUILDS, revision, (suite.content_sha256, 2))
    assert "is the published build" in tiny_suite.published_build_note(suite)
    monkeypatch.setitem(tiny_suite.PUBLISHED_BUILDS, revision, ("0" * 64, 2))
    note = tiny_suite.published_build_note(suite)
    assert note.startswith("warning:") and "0000000000" in note and suite.content_sha256[:10] in note
    assert "the same 2 pieces gave other bytes, so another torch" in note  # not the layout
    monkeypatch.setitem(tiny_suite.PUBLISHED_BUILDS, revision, ("0" * 64, 4))
    assert "built in 2 pieces here, the published build in 4" in tiny_suite.published_build_note(suite)
