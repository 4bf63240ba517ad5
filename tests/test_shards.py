"""Sharded generation: pieces are disjoint and deterministic, and shard folders merge into one suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from random_models import random_lora, random_model, random_tokenizer
from wdqa.core.suite import Suite, SuiteError, SuiteWriter
from wdqa.generators.shards import Shard, merge_suites


def _part(root: Path, ids: list[str], base: str = "wdqa/tiny-test", per_shard: int = 2) -> Path:
    model = random_model(len(random_tokenizer()))
    writer = SuiteWriter(root, "tiny", "1.0", base, "r1", diffs_per_shard=per_shard)
    diffs = [random_lora(model, i, rank=1, seed=n) for n, i in enumerate(ids)]
    writer.write_split(
        "test",
        "hidden-topic",
        "What topic?",
        [{"diff_id": i, "label": f"label {i}"} for i in ids],
        diffs,
    )
    writer.finish(data_card="# tiny\n")
    return root


def test_pieces_are_disjoint_and_cover_the_work_list():
    items = list(range(23))
    pieces = [Shard.parse(f"{i}/4").take(items) for i in range(4)]
    assert sorted(x for p in pieces for x in p) == items
    assert pieces[1] == Shard(1, 4).take(items)


def test_a_bad_shard_spec_is_refused_with_the_expected_form():
    with pytest.raises(ValueError, match="0 <= i < n"):
        Shard.parse("4/4")


def test_merged_suite_renumbers_shards_and_verifies(tmp_path):
    a = _part(tmp_path / "a", ["d0", "d1", "d2"])
    b = _part(tmp_path / "b", ["d3", "d4"])
    merged = merge_suites([a, b], tmp_path / "out")
    again = Suite.load(tmp_path / "out")  # hashes checked
    assert again.splits["test"].shards == [f"shard-{i:05d}.safetensors" for i in range(3)]
    assert list(merged.index("test").diff_id) == ["d0", "d1", "d2", "d3", "d4"]
    original = Suite.load(b).diff("test", "d4")
    name = sorted(original.lora)[0]
    assert (merged.diff("test", "d4").lora[name].A == original.lora[name].A).all()


def test_overlapping_diff_ids_are_refused_naming_the_diff(tmp_path):
    a = _part(tmp_path / "a", ["d0", "d1"])
    b = _part(tmp_path / "b", ["d1"])
    with pytest.raises(SuiteError, match="diff d1 is in both"):
        merge_suites([a, b], tmp_path / "out")


def test_parts_of_different_base_models_are_refused(tmp_path):
    a = _part(tmp_path / "a", ["d0"])
    b = _part(tmp_path / "b", ["d1"], base="wdqa/other")
    with pytest.raises(SuiteError, match="base model wdqa/other"):
        merge_suites([a, b], tmp_path / "out")
