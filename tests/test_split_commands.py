"""`wdqa generate extra` and `wdqa generate merge` from the command line, on the micro tiny suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.suite import Suite
from wdqa.generators.publish.private_split import maintainer_labels_path

runner = CliRunner()


@pytest.mark.slow  # ~40 s: three model loads and builds on 2 shared cores
def test_extra_splits_built_in_two_shards_merge_with_the_suite(micro_suite: Path, tmp_path: Path):
    suite = tmp_path / "suite"
    shutil.copytree(micro_suite, suite)
    # The private split's topics are kept out of the extra splits: its label file sits beside the suite.
    shutil.copytree(maintainer_labels_path(micro_suite).parent, maintainer_labels_path(suite).parent)
    for i in range(2):
        result = runner.invoke(app, ["generate", "extra", str(suite), "--micro", "--split", "ood-trigger",
                                     "--shard", f"{i}/2", "--out", str(tmp_path / f"part{i}")])
        assert result.exit_code == 0, result.output
        assert "ood-trigger: 2 diffs" in result.output
    result = runner.invoke(app, ["generate", "merge", str(suite), str(tmp_path / "part0"), str(tmp_path / "part1"),
                                 "--out", str(tmp_path / "full")])
    assert result.exit_code == 0, result.output
    merged = Suite.load(tmp_path / "full")
    assert merged.splits["ood-trigger"].n_diffs == 4
    assert set(Suite.load(micro_suite).splits) < set(merged.splits)
    assert merged.is_private("private-test")  # merged as its published index alone


def test_a_shard_without_an_output_folder_is_refused(micro_suite: Path):
    result = runner.invoke(app, ["generate", "extra", str(micro_suite), "--micro", "--shard", "0/2"])
    assert result.exit_code != 0 and "--shard needs --out" in result.output


def test_a_missing_suite_is_one_clear_error_not_a_traceback(tmp_path: Path):
    result = runner.invoke(app, ["generate", "extra", str(tmp_path / "nope"), "--micro"])
    assert result.exit_code == 1 and "error:" in result.output and "nope" in result.output
    assert "Traceback" not in result.output
