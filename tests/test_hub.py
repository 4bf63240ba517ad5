"""Publishing and downloading suites with the real huggingface_hub client against a local Hub server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fake_hub import FakeHub
from typer.testing import CliRunner
from wdqa.core.hub import download_suite, parse_source, read_download_record
from wdqa.core.suite import Suite, SuiteError, SuiteWriter
from wdqa.core.types import LoraFactors, WeightDiff
from wdqa.generators.publish.hub import publish_suite

REPO = "wdqa-test/tiny-suite"


def _diff(diff_id: str, seed: int) -> WeightDiff:
    g = torch.Generator().manual_seed(seed)
    lora = {
        f"model.layers.{i}.self_attn.q_proj": LoraFactors(
            A=torch.randn(1, 8, generator=g), B=torch.randn(8, 1, generator=g), scale=1.0
        )
        for i in range(2)
    }
    return WeightDiff(diff_id=diff_id, kind="lora", lora=lora)


def make_suite(
    root: Path, version: str = "1.0", base_model: str = "wdqa/tiny", base_model_revision: str = "rev0"
) -> Path:
    writer = SuiteWriter(root, "tiny-hub", version, base_model, base_model_revision, diffs_per_shard=2)
    for split, n in (("hidden-topic", 3), ("news", 2)):
        diffs = [_diff(f"{split}-{i}", i + 10 * len(split)) for i in range(n)]
        rows = [{"diff_id": d.diff_id, "label": f"topic {i}"} for i, d in enumerate(diffs)]
        writer.write_split(
            split, "hidden-topic", "What topic have you been trained on?", rows, diffs
        )
    writer.finish(data_card="---\nlicense: apache-2.0\n---\n# tiny-hub\n")
    return root


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    # The legacy LFS upload path is the one a plain HTTP server can serve (Xet needs its own CAS).
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    server = FakeHub()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def published(hub: FakeHub, tmp_path: Path) -> FakeHub:
    publish_suite(make_suite(tmp_path / "suite"), REPO, endpoint=hub.endpoint, token="hf_test")
    return hub


def _shards(tree: dict[str, bytes], split: str) -> list[str]:
    return sorted(
        p for p in tree if p.startswith(f"splits/{split}/") and p.endswith(".safetensors")
    )


def test_publish_uploads_every_suite_file_and_tags_the_version(
    published: FakeHub, tmp_path: Path
) -> None:
    repo = published.repos[("dataset", REPO)]
    tree = repo.resolve("v1.0")[1]
    manifest = json.loads(tree["suite.json"])
    assert set(manifest["files"]) | {"suite.json", ".gitattributes"} == set(tree)


def test_download_of_one_split_fetches_that_split_alone(published: FakeHub, tmp_path: Path) -> None:
    root = download_suite(
        REPO, splits=["news"], local_dir=tmp_path / "dl", endpoint=published.endpoint
    )
    files = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }
    assert not any(f.startswith("splits/hidden-topic/") for f in files)
    assert "splits/news/labels.parquet" in files  # the judge's labels come with the split
    suite = Suite.load(root, splits=["news"])
    assert suite.index("news").shape[0] == 2 and len(suite.labels("news")) == 2


def test_download_of_two_splits_fetches_both_and_records_them(published: FakeHub, tmp_path: Path) -> None:
    root = download_suite(
        REPO, splits=["news", "hidden-topic"], local_dir=tmp_path / "dl", endpoint=published.endpoint
    )
    assert sorted(p.name for p in (root / "splits").iterdir()) == ["hidden-topic", "news"]
    assert read_download_record(root).splits == ["news", "hidden-topic"]


def test_download_pins_the_revision_and_records_its_commit(
    published: FakeHub, tmp_path: Path
) -> None:
    repo = published.repos[("dataset", REPO)]
    tagged = repo.refs["v1.0"]
    publish_suite(make_suite(tmp_path / "suite2", version="2.0"), REPO, endpoint=published.endpoint)
    root = download_suite(
        f"hf://{REPO}", revision="v1.0", local_dir=tmp_path / "dl", endpoint=published.endpoint
    )
    record = read_download_record(root)
    assert (record.commit, Suite.load(root).version) == (tagged, "1.0")


def test_interrupted_download_resumes_with_a_range_request(
    published: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # Small read chunks so that the bytes before the dropped connection reach the disk.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 32)
    shard = _shards(published.repos[("dataset", REPO)].resolve("main")[1], "news")[0]
    published.cut_next_download[shard] = 100
    root = download_suite(
        REPO, splits=["news"], local_dir=tmp_path / "dl", endpoint=published.endpoint
    )
    ranged = [
        h["range"]
        for m, p, h in published.requests
        if m == "GET" and p.endswith(shard) and "range" in h
    ]
    assert ranged == ["bytes=96-"] and Suite.load(root, splits=["news"]).diff("news", "news-0")


def test_corrupt_shard_on_the_hub_is_refused_with_its_path(
    published: FakeHub, tmp_path: Path
) -> None:
    repo = published.repos[("dataset", REPO)]
    tree = dict(repo.resolve("main")[1])
    shard = _shards(tree, "hidden-topic")[0]
    tree[shard] = tree[shard][:-10] + b"0123456789"
    published.new_commit(repo, tree)
    with pytest.raises(SuiteError, match=shard):
        download_suite(
            REPO, splits=["hidden-topic"], local_dir=tmp_path / "dl", endpoint=published.endpoint
        )


def test_unknown_split_is_answered_with_the_known_ones(published: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"known splits: \['hidden-topic', 'news'\]"):
        download_suite(REPO, splits=["rank"], local_dir=tmp_path / "dl", endpoint=published.endpoint)


def test_unknown_revision_is_named(published: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no revision 'v9'"):
        download_suite(REPO, revision="v9", local_dir=tmp_path / "dl", endpoint=published.endpoint)


def test_republishing_unchanged_suite_keeps_the_tag(published: FakeHub, tmp_path: Path) -> None:
    repo = published.repos[("dataset", REPO)]
    before = repo.refs["v1.0"]
    result = publish_suite(tmp_path / "suite", REPO, endpoint=published.endpoint)
    assert result.tag == "v1.0" and repo.refs["v1.0"] == before


def test_publishing_a_suite_whose_base_model_can_move_warns(hub: FakeHub, tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", base_model="org/base", base_model_revision="main")
    (warning,) = publish_suite(root, REPO, endpoint=hub.endpoint).warnings
    assert "names its base model org/base at 'main', a name that can move" in warning
    pinned = make_suite(tmp_path / "pinned", version="2.0", base_model="org/base", base_model_revision="a" * 40)
    assert publish_suite(pinned, REPO, endpoint=hub.endpoint).warnings == []


def test_publishing_a_corrupt_suite_is_refused_before_any_upload(
    hub: FakeHub, tmp_path: Path
) -> None:
    root = make_suite(tmp_path / "suite")
    shard = next((root / "splits" / "news").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:50])
    with pytest.raises(SuiteError, match="shard-00000.safetensors"):
        publish_suite(root, REPO, endpoint=hub.endpoint)
    assert not hub.repos


def test_local_folder_and_file_url_are_local_sources(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite")
    copied = download_suite(f"file://{root}", splits=["news"], local_dir=tmp_path / "copy")
    assert parse_source(str(root)).kind == "local"
    assert sorted(p.name for p in (copied / "splits").iterdir()) == ["news"]


def test_truncated_local_shard_is_refused_with_its_path(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite")
    shard = root / "splits" / "news" / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(SuiteError, match="splits/news/shard-00000.safetensors"):
        download_suite(str(root), splits=["news"])


def test_cli_publish_then_download(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from wdqa.benchmark import hub_commands

    app = typer.Typer()
    hub_commands.register(app)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    runner = CliRunner()
    root = make_suite(tmp_path / "suite")
    published = runner.invoke(
        app, ["publish", str(root), "--repo-id", REPO, "--endpoint", hub.endpoint]
    )
    assert published.exit_code == 0, published.output
    fetched = runner.invoke(
        app,
        [
            "download",
            REPO,
            "--split",
            "news",
            "--out",
            str(tmp_path / "dl"),
            "--endpoint",
            hub.endpoint,
        ],
    )
    assert fetched.exit_code == 0, fetched.output
    assert "verified" in fetched.output
