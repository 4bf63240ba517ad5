"""The tiny base's bytes shipped with wdqa: installed (checked) instead of pretrained on a first run,
refused when damaged, pretrained on request, compared by `wdqa generate tiny-base`, and in the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.suite import sha256_file
from wdqa.generators.tiny import build as tiny_build
from wdqa.generators.tiny import shipped as shipped_mod
from wdqa.generators.tiny.build import TINY_BASE_ID, TINY_MICRO_ID, ensure_tiny_base, tiny_recipe
from wdqa.generators.tiny.shipped import BUILD_ENV, ShippedBaseError, ship, shipped_base

ROOT = Path(__file__).resolve().parents[1]
MICRO_REVISION = tiny_recipe(TINY_MICRO_ID).revision


@pytest.fixture
def shipped_micro(micro_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The micro base shipped from a temporary data folder, and an empty cache to install it into."""
    root = tmp_path / "bases"
    ship(micro_base, TINY_MICRO_ID, MICRO_REVISION, {"torch": "t", "cpu": "a test CPU", "cpu_capability": "X"}, root=root)
    monkeypatch.setattr(shipped_mod, "SHIPPED_DIR", root)
    monkeypatch.setenv("WDQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(BUILD_ENV, raising=False)
    return root / TINY_MICRO_ID.replace("/", "--") / MICRO_REVISION


def _no_pretraining(*args: object, **kwargs: object) -> None:
    raise AssertionError("the base was pretrained, not installed")


def test_a_first_run_installs_the_shipped_base_instead_of_pretraining_it(
    shipped_micro: Path, micro_base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tiny_build, "build_tiny_base", _no_pretraining)
    folder = ensure_tiny_base(TINY_MICRO_ID)
    assert folder.is_relative_to(os.environ["WDQA_CACHE"])
    for path in micro_base.iterdir():
        assert (folder / path.name).read_bytes() == path.read_bytes()
    err = capsys.readouterr().err
    assert "shipped with wdqa" in err and f"{BUILD_ENV}=1" in err
    assert ensure_tiny_base(TINY_MICRO_ID) == folder  # cached: no second message
    assert capsys.readouterr().err == ""


def test_a_damaged_shipped_file_is_refused_with_the_fix_and_leaves_no_cache_entry(
    shipped_micro: Path, tmp_path: Path
) -> None:
    weights = shipped_micro / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ShippedBaseError, match=rf"model\.safetensors .*damaged; reinstall wdqa, or set {BUILD_ENV}=1"):
        ensure_tiny_base(TINY_MICRO_ID)
    assert not any((tmp_path / "cache" / "models").rglob("model.safetensors"))


def test_a_damaged_shipped_base_stops_a_suite_build_with_one_line(shipped_micro: Path, tmp_path: Path) -> None:
    (shipped_micro / "config.json").write_text("{}")
    result = CliRunner().invoke(app, ["generate", "tiny", "--micro", "--out", str(tmp_path / "suite")])
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert line.startswith("error: the shipped tiny base wdqa/tiny-qwen3-micro") and "config.json" in line
    assert "Traceback" not in result.output and not (tmp_path / "suite").exists()


def test_a_missing_shipped_file_is_refused_with_the_fix(shipped_micro: Path) -> None:
    (shipped_micro / "tokenizer.json").unlink()
    with pytest.raises(ShippedBaseError, match="lacks tokenizer.json: the wdqa install is incomplete"):
        ensure_tiny_base(TINY_MICRO_ID)


def test_wdqa_build_base_pretrains_from_the_recipe_instead(
    shipped_micro: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretrained = []

    def pretrain(recipe: object, out_dir: Path) -> None:
        pretrained.append(recipe)
        (out_dir / "wdqa-build.json").write_text("{}")

    monkeypatch.setattr(tiny_build, "build_tiny_base", pretrain)
    monkeypatch.setenv(BUILD_ENV, "1")
    folder = ensure_tiny_base(TINY_MICRO_ID)
    assert pretrained == [tiny_recipe(TINY_MICRO_ID)]
    assert not (folder / "model.safetensors").exists()  # the stand-in pretraining wrote only its record


def test_generate_tiny_base_says_whether_the_recipe_makes_the_shipped_bytes(shipped_micro: Path, tmp_path: Path) -> None:
    same = CliRunner().invoke(app, ["generate", "tiny-base", "--micro", "--out", str(tmp_path / "a")])
    assert same.exit_code == 0, same.output
    assert "the same bytes as the build shipped with wdqa" in same.output
    assert "Writing model shards" not in same.output  # transformers' bar for saving the 6 MB
    assert "model.safetensors" in same.output

    record = shipped_micro.with_suffix(".json")
    rigged = json.loads(record.read_text())
    rigged["files"]["model.safetensors"] = "0" * 64
    record.write_text(json.dumps(rigged))
    other = CliRunner().invoke(app, ["generate", "tiny-base", "--micro", "--out", str(tmp_path / "b")])
    assert other.exit_code == 1, other.output
    assert "differs from the build shipped with wdqa in model.safetensors" in " ".join(other.output.split())
    assert "torch t on a test CPU (X)" in other.output


def test_generate_tiny_base_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["generate", "tiny-base", "--micro", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "is not empty; give --out a new folder" in result.output
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_the_default_recipe_has_shipped_bytes_that_match_their_record() -> None:
    # A changed recipe (a new revision) without shipped bytes would make every first run pretrain again.
    recipe = tiny_recipe(TINY_BASE_ID)
    shipped = shipped_base(TINY_BASE_ID, recipe.revision)
    assert shipped is not None, f"ship the base of revision {recipe.revision} (generators/tiny/shipped.py: ship)"
    for name, expected in shipped.files.items():
        assert sha256_file(shipped.folder / name) == expected, name
    config = json.loads((shipped.folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"]) == (recipe.shape.hidden_size, recipe.shape.num_hidden_layers)
    info = json.loads((shipped.folder / "wdqa-build.json").read_text())
    assert info["revision"] == recipe.revision and info["pretrain"]["steps"] == recipe.steps
    weights = load_file(shipped.folder / "model.safetensors")
    assert sum(t.numel() for t in weights.values()) == info["pretrain"]["n_params"]


def test_a_wheel_carries_the_shipped_base(tmp_path: Path) -> None:
    # An editable install reads the source tree; `pip install .` and PyPI get only the package data.
    shutil.copytree(ROOT, tmp_path / "src", ignore=shutil.ignore_patterns(".git", "runs", "site", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tmp_path / "src"), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("wdqa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = shipped_base(TINY_BASE_ID, tiny_recipe(TINY_BASE_ID).revision)
    assert shipped is not None
    prefix = "wdqa/generators/data/bases/wdqa--tiny-qwen3/"
    assert f"{prefix}{shipped.revision}.json" in names
    assert {f"{prefix}{shipped.revision}/{name}" for name in shipped.files} <= names
