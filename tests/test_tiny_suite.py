"""The tiny suite: planned by topic, written in the suite format with its rates, and the CLI around it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.engine import Engine
from wdqa.core.machine import build_machine, describe
from wdqa.core.models import load_base_model
from wdqa.core.private_labels import read_private_labels
from wdqa.core.suite import Suite, SuiteError
from wdqa.generators.publish.private_split import maintainer_labels_path
from wdqa.generators.shards import Shard
from wdqa.generators.splits import SPLITS
from wdqa.generators.tiny_suite import (
    MICRO_RECIPE,
    TinySuiteError,
    TinySuiteRecipe,
    build_tiny_suite,
    build_units,
    ensure_tiny_suite,
    plan_diffs,
    splits_on_disk,
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


def _fresh_cache(micro_suite: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001 - pytest fixture
    monkeypatch.setenv("WDQA_CACHE", str(tmp_path))
    shutil.copytree(micro_suite.parents[2] / "models", tmp_path / "models")  # reuse the session's micro base model


def test_a_suite_built_by_one_worker_is_the_same_bytes_as_one_built_by_two(micro_suite, tmp_path, monkeypatch):
    # Units, not workers, decide the layout: the content hash does not depend on the machine's cores.
    _fresh_cache(micro_suite, tmp_path, monkeypatch)
    one = Suite.load(ensure_tiny_suite(MICRO_RECIPE, workers=1))
    two = Suite.load(micro_suite)
    assert one.content_sha256 == two.content_sha256
    assert {k: v for k, v in one.files.items() if k.startswith("splits/")} == {
        k: v for k, v in two.files.items() if k.startswith("splits/")}
    kept = [read_private_labels(maintainer_labels_path(s.root, "private-test")).table for s in (one, two)]
    assert kept[0].equals(kept[1])  # the same sealed labels and canaries
    assert len(one.extra["merged_from"]) == len(build_units(MICRO_RECIPE)) > len(MICRO_RECIPE.split_sizes)


def test_the_splits_asked_for_are_built_first_and_alone_then_the_rest_on_request(micro_suite, tmp_path, monkeypatch):
    _fresh_cache(micro_suite, tmp_path, monkeypatch)
    root = ensure_tiny_suite(MICRO_RECIPE, workers=2, splits=["test"])
    units = root.parent / f".{root.name}.units"
    assert sorted(p.name for p in units.iterdir() if p.is_dir()) == ["test-000-of-002", "test-001-of-002"]
    suite = Suite.load(root)
    assert splits_on_disk(root) == {"test"} and len(suite.index("test")) == 4
    whole = Suite.load(micro_suite)
    assert {k: v for k, v in suite.files.items() if k.startswith("splits/test/")} == {
        k: v for k, v in whole.files.items() if k.startswith("splits/test/")}  # the same bytes as a whole build
    assert ensure_tiny_suite(MICRO_RECIPE, splits=["test"]) == root  # nothing to build
    ensure_tiny_suite(MICRO_RECIPE, workers=2, splits=["val", "train"])
    assert splits_on_disk(root) == {"test", "val", "train"} and units.exists()  # kept until the suite is whole
    ensure_tiny_suite(MICRO_RECIPE, workers=2)
    assert Suite.load(root).content_sha256 == whole.content_sha256 and not units.exists()


def test_units_are_held_to_the_bar_together_when_merged(micro_suite, tmp_path, monkeypatch) -> None:
    _fresh_cache(micro_suite, tmp_path, monkeypatch)
    strict = dataclasses.replace(MICRO_RECIPE, stop_below_bar=True)
    with pytest.raises(TinySuiteError, match="hit median"):
        ensure_tiny_suite(strict, workers=1, splits=["val"])
    assert not (tmp_path / "suites" / strict.name / strict.revision).exists()  # nothing half-made in the cache


def test_a_partial_build_with_the_published_bytes_lists_the_published_splits(micro_suite, tmp_path, monkeypatch):
    from wdqa.generators import tiny_suite

    monkeypatch.setattr(tiny_suite, "PUBLISHED_DIR", tmp_path / "published")
    whole = Suite.load(micro_suite)
    assert "no published build" in tiny_suite.published_build_note(whole)
    record = tiny_suite.publish_build_record(whole)
    assert record.name == f"{MICRO_RECIPE.revision}.json"
    _fresh_cache(micro_suite, tmp_path / "cache", monkeypatch)
    root = ensure_tiny_suite(MICRO_RECIPE, workers=2, splits=["test"])
    partial = Suite.load(root)  # verifies what is on disk
    # Like a partial download of the published build: the other splits are listed, not there, and
    # the content hash (a run's identity) is the whole build's.
    assert set(partial.splits) == set(whole.splits) and splits_on_disk(root) == {"test"}
    assert partial.content_sha256 == whole.content_sha256
    with pytest.raises(SuiteError, match="wdqa download tiny-micro --split train"):
        partial.split("train")
    note = tiny_suite.published_build_note(partial)
    assert "splits test are the published build's bytes" in note and whole.content_sha256[:10] in note


def test_a_build_whose_bytes_differ_from_the_published_one_says_so(micro_suite, tmp_path, monkeypatch):
    import json

    from wdqa.generators import tiny_suite

    monkeypatch.setattr(tiny_suite, "PUBLISHED_DIR", tmp_path)
    record = json.loads(tiny_suite.publish_build_record(Suite.load(micro_suite)).read_text())
    assert record["built_on"] == build_machine()  # the machine a build ran on travels into the record
    record["files"]["splits/test/index.parquet"] = "0" * 64  # as if the publisher's machine trained otherwise
    record["built_on"] = {"torch": "2.13.0+cpu", "cpu": "Some Other CPU", "cpu_capability": "AVX512"}
    (tmp_path / f"{MICRO_RECIPE.revision}.json").write_text(json.dumps(record))
    note = tiny_suite.published_build_note(Suite.load(micro_suite))
    assert note.startswith("warning:") and "splits test are not the published build's bytes" in note
    # both machines named, so a user sees what differs
    assert "torch 2.13.0+cpu on Some Other CPU (AVX512)" in note and describe(build_machine()) in note
    del record["built_on"]  # a record from before machines were recorded
    (tmp_path / f"{MICRO_RECIPE.revision}.json").write_text(json.dumps(record))
    assert "built with a torch and CPU it did not record" in tiny_suite.published_build_note(Suite.load(micro_suite))


def test_publishing_an_adapter_into_a_partial_suite_keeps_the_splits_it_lists(micro_suite, tmp_path) -> None:
    from wdqa.core.suite import rehash_manifest

    copy = tmp_path / "suite"
    shutil.copytree(micro_suite, copy)
    before = Suite.load(copy)
    shutil.rmtree(copy / "splits" / "train")  # as a download of the other splits leaves it
    (copy / "dit" / "default").mkdir(parents=True)
    (copy / "dit" / "default" / "adapter.safetensors").write_bytes(b"x")
    rehash_manifest(copy)
    after = Suite.load(copy)
    assert after.content_sha256 == before.content_sha256 and "dit/default/adapter.safetensors" in after.files


def test_a_rebuilt_base_model_gives_the_suite_a_new_revision(monkeypatch) -> None:
    import wdqa.generators.tiny_suite as tiny_suite

    before = TinySuiteRecipe().revision
    rebuilt = dataclasses.replace(tiny_suite.tiny_recipe(TinySuiteRecipe().base_model), steps=301)
    monkeypatch.setattr(tiny_suite, "tiny_recipe", lambda model_id: rebuilt)
    assert TinySuiteRecipe().revision != before


def test_the_default_recipe_has_a_published_build_to_compare_with() -> None:
    # A recipe change without a rebuilt, re-measured, re-published suite fails here: the README's
    # figures name the content hash they were measured on.
    from wdqa.generators.tiny_suite import TinySuiteRecipe, published_build

    record = published_build(TinySuiteRecipe().revision)
    assert record is not None and set(record["splits"]) == {s for s, _ in TinySuiteRecipe().split_sizes}
