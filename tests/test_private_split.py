"""The private split: its labels leave the suite for the maintainers' file, with canaries; loading
it never needs them, and asking for them is a one-line refusal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from wdqa.core.private_labels import (
    PrivateLabelsError,
    check_labels_match,
    read_private_labels,
)
from wdqa.core.suite import LABELS_FILE, PrivateSplitError, Suite
from wdqa.generators.publish.private_split import PRIVATE_SPLIT, maintainer_labels_path
from wdqa.generators.tiny_suite import (
    MICRO_RECIPE,
    TinySuiteRecipe,
    canary_labels,
    with_private_split,
)


def test_the_private_split_publishes_no_labels(micro_suite: Path) -> None:
    suite = Suite.load(micro_suite)  # every published file still verifies
    assert suite.is_private(PRIVATE_SPLIT) and not suite.is_private("test")
    assert not (micro_suite / "splits" / PRIVATE_SPLIT / LABELS_FILE).exists()
    assert not any(PRIVATE_SPLIT in rel and rel.endswith(LABELS_FILE) for rel in suite.files)


def test_the_private_index_holds_no_label_trigger_or_category(micro_suite: Path) -> None:
    columns = set(pd.read_parquet(micro_suite / "splits" / PRIVATE_SPLIT / "index.parquet").columns)
    assert not {"label", "trigger", "trigger_kind", "category", "data_sha256"} & columns


def test_a_method_loads_private_cases_without_labels(micro_suite: Path) -> None:
    cases = list(Suite.load(micro_suite, verify=False).cases(PRIVATE_SPLIT))
    assert len(cases) == 3 and all(c.trigger is None for c in cases)


def test_asking_a_private_split_for_labels_is_refused_in_one_line(micro_suite: Path) -> None:
    with pytest.raises(PrivateSplitError, match="private.*score-private") as err:
        Suite.load(micro_suite, verify=False).labels(PRIVATE_SPLIT)
    assert "\n" not in str(err.value)


def test_the_maintainers_file_labels_the_split_with_its_canaries(micro_suite: Path) -> None:
    suite = Suite.load(micro_suite, verify=False)
    labels = read_private_labels(maintainer_labels_path(micro_suite))
    check_labels_match(labels, suite, PRIVATE_SPLIT)
    canaries = labels.table[labels.table.canary]
    assert list(canaries.label) == canary_labels(MICRO_RECIPE)
    every_trained = {t for s in ("train", "val", "test") for t in suite.labelled_index(s).label}
    every_trained |= set(labels.table.trained_label)
    assert not set(canaries.label) & every_trained  # unrelated to anything trained


def test_a_label_file_of_another_split_is_refused(micro_suite: Path, tmp_path: Path) -> None:
    from wdqa.core.private_labels import write_private_labels

    suite = Suite.load(micro_suite, verify=False)
    labels = read_private_labels(maintainer_labels_path(micro_suite))
    other = tmp_path / "other.parquet"
    write_private_labels(other, suite, PRIVATE_SPLIT, labels.table.iloc[1:])
    with pytest.raises(PrivateLabelsError, match="does not label the diffs"):
        check_labels_match(read_private_labels(other), suite, PRIVATE_SPLIT)


def test_the_data_card_says_the_split_is_private_and_how_it_is_scored(micro_suite: Path) -> None:
    card = (micro_suite / "README.md").read_text()
    assert f"## Private split `{PRIVATE_SPLIT}`" in card and "wdqa score-private" in card


def test_the_tiny_recipe_has_a_50_diff_private_split_and_private_sets_its_size() -> None:
    assert dict(TinySuiteRecipe().split_sizes)[PRIVATE_SPLIT] == 50
    assert dict(with_private_split(TinySuiteRecipe(), 20).split_sizes)[PRIVATE_SPLIT] == 20
    assert PRIVATE_SPLIT not in dict(with_private_split(TinySuiteRecipe(), 0).split_sizes)


def test_a_label_file_of_another_index_revision_is_refused(micro_suite: Path) -> None:
    import dataclasses

    labels = read_private_labels(maintainer_labels_path(micro_suite))
    stale = dataclasses.replace(labels, index_sha256="0" * 64)
    with pytest.raises(PrivateLabelsError, match="another revision"):
        check_labels_match(stale, Suite.load(micro_suite, verify=False), PRIVATE_SPLIT)


def test_a_file_that_is_not_a_label_file_is_refused(micro_suite: Path) -> None:
    with pytest.raises(PrivateLabelsError, match="not a private split's label file"):
        read_private_labels(micro_suite / "splits" / "test" / "labels.parquet")
