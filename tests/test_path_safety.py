"""A suite or a method name cannot make wdqa read or write outside the suite and runs folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from random_models import random_model
from test_suite_format import VOCAB, write_suite
from wdqa.benchmark.evaluate import run_dir_for
from wdqa.benchmark.method import MethodError
from wdqa.core.suite import MANIFEST, Suite, SuiteError, sha256_file


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    write_suite(root, random_model(VOCAB))
    return root


def copy_of(suite_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(suite_dir, tmp_path / "suite"))


def edit_manifest(root: Path, edit) -> None:  # noqa: ANN001
    manifest = json.loads((root / MANIFEST).read_text())
    edit(manifest)
    (root / MANIFEST).write_text(json.dumps(manifest))


def point_shard_at(root: Path, diff_id: str, shard: str) -> None:
    """Rewrite the index so one diff's shard is `shard`, and re-hash the index in suite.json, as a
    crafted suite would: the manifest then vouches for the index."""
    index = root / "splits" / "test" / "index.parquet"
    df = pd.read_parquet(index)
    df.loc[df.diff_id == diff_id, "shard"] = shard
    df.to_parquet(index, index=False)
    edit_manifest(root, lambda m: m["files"].__setitem__("splits/test/index.parquet", sha256_file(index)))


@pytest.mark.parametrize("shard", ["../../../outside.safetensors", "/etc/passwd", "..", "sub/shard-00000.safetensors", ""])
def test_an_index_shard_outside_the_split_folder_is_refused_naming_split_diff_and_value(
    suite_dir: Path, tmp_path: Path, shard: str
) -> None:
    root = copy_of(suite_dir, tmp_path)
    (tmp_path / "outside.safetensors").write_bytes((root / "splits/test/shard-00000.safetensors").read_bytes())
    point_shard_at(root, "ht-001", shard)
    suite = Suite.load(root)  # every hash matches: the refusal is the index check's
    with pytest.raises(SuiteError, match=rf"split test: diff ht-001 names shard {shard!r}, which is not a file name inside splits/test/"):
        list(suite.diffs("test"))
    with pytest.raises(SuiteError, match="ht-001"):
        next(suite.cases("test"))


@pytest.mark.parametrize("key", ["../outside.txt", "/etc/passwd", "splits/test/../../../x", "dit/.."])
def test_a_manifest_file_outside_the_suite_folder_is_refused_at_load(suite_dir: Path, tmp_path: Path, key: str) -> None:
    root = copy_of(suite_dir, tmp_path)
    edit_manifest(root, lambda m: m["files"].__setitem__(key, "0" * 64))
    with pytest.raises(SuiteError, match=rf"lists file {key!r}, which is not a path inside the suite folder"):
        Suite.load(root, verify=False)


@pytest.mark.parametrize("split", ["..", ".", "a/b", ""])
def test_a_split_name_that_is_not_a_folder_name_is_refused_at_load(suite_dir: Path, tmp_path: Path, split: str) -> None:
    root = copy_of(suite_dir, tmp_path)
    edit_manifest(root, lambda m: m["splits"].__setitem__(split, {**m["splits"]["test"], "name": split}))
    with pytest.raises(SuiteError, match=rf"split named {split!r}"):
        Suite.load(root, verify=False)


def test_an_honest_suite_still_loads_and_reads(suite_dir: Path) -> None:
    assert len(list(Suite.load(suite_dir).diffs("test"))) == 6


@pytest.mark.parametrize("name", ["..", ".", "", "...", ".hidden", "x" * 201])
def test_a_method_name_that_cannot_name_a_run_folder_is_refused(suite_dir: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(MethodError, match="rename the method"):
        run_dir_for(tmp_path / "runs", Suite.load(suite_dir, verify=False), name)


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("20-questions[openai:gpt-4.1]", "20-questions_openai_gpt-4.1_"),
        ("20-questions[openai:Qwen/Qwen3-8B]", "20-questions_openai_Qwen_Qwen3-8B_"),
        ("my method v2", "my_method_v2"),
        ("a/../../b", "a_.._.._b"),
        ("dit+0.25", "dit+0.25"),
    ],
)
def test_an_ordinary_method_name_gets_a_folder_inside_the_suite_runs(
    suite_dir: Path, tmp_path: Path, name: str, folder: str
) -> None:
    suite = Suite.load(suite_dir, verify=False)
    path = run_dir_for(tmp_path / "runs", suite, name)
    assert path == tmp_path / "runs" / f"{suite.name}-{suite.content_sha256[:10]}" / folder
