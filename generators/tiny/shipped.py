"""The tiny base model's bytes, shipped with wdqa: a first run installs them instead of pretraining.

Pretraining the default base takes 12-18 minutes on a 2-core CPU, most of a new user's first run
(issue 23), for 5.7 MB of weights. So wdqa ships the base that its published suite build was made
on (`data/bases/<model id>/<revision>/`, each file's sha256 in `<revision>.json`), and a run copies
and checks those. The recipe still builds the same model: `WDQA_BUILD_BASE=1` pretrains instead, and
`wdqa generate tiny-base` pretrains it and says whether its bytes are the shipped ones.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import WdqaError
from ...core.suite import sha256_file

SHIPPED_DIR = Path(__file__).parents[1] / "data" / "bases"
BUILD_ENV = "WDQA_BUILD_BASE"  # set (not 0): pretrain the base from its recipe, never install shipped bytes
# What a build records of itself (its seconds, threads, machine): not part of the model's bytes.
NOT_COMPARED = frozenset({"wdqa-build.json"})


class ShippedBaseError(WdqaError):
    """The shipped bytes are not what their record says (a damaged install)."""


@dataclass(frozen=True)
class ShippedBase:
    model_id: str
    revision: str
    folder: Path
    files: dict[str, str]  # file name -> sha256
    built_on: dict[str, str] | None  # torch and CPU of the machine that pretrained it

    @property
    def model_files(self) -> dict[str, str]:
        return {k: v for k, v in self.files.items() if k not in NOT_COMPARED}


def _model_dir(root: Path, model_id: str) -> Path:
    return root / model_id.replace("/", "--")


def shipped_base(model_id: str, revision: str, root: Path | None = None) -> ShippedBase | None:
    """The shipped build of `model_id` at `revision`, or None where wdqa ships none."""
    record_path = _model_dir(root or SHIPPED_DIR, model_id) / f"{revision}.json"
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    return ShippedBase(model_id, revision, record_path.with_suffix(""), record["files"], record.get("built_on"))


def build_requested() -> bool:
    return os.environ.get(BUILD_ENV, "") not in ("", "0")


def install(shipped: ShippedBase, out_dir: Path) -> None:
    """Copy the shipped files into `out_dir`, each checked against its recorded sha256."""
    for name, expected in sorted(shipped.files.items()):
        source = shipped.folder / name
        if not source.exists():
            raise ShippedBaseError(
                f"the shipped tiny base {shipped.model_id} ({shipped.revision}) lacks {name}: the wdqa install is "
                f"incomplete; reinstall wdqa, or set {BUILD_ENV}=1 to pretrain the base from its recipe"
            )
        shutil.copyfile(source, out_dir / name)
        if sha256_file(out_dir / name) != expected:
            raise ShippedBaseError(
                f"the shipped tiny base {shipped.model_id} ({shipped.revision}): {name} is not the bytes its record "
                f"names (sha256 {expected[:12]}…); the wdqa install is damaged; reinstall wdqa, or set {BUILD_ENV}=1 "
                "to pretrain the base from its recipe"
            )


def differing_files(folder: Path, shipped: ShippedBase) -> list[str]:
    """The model files (weights, config, tokenizer) whose bytes in `folder` are not the shipped ones."""
    return sorted(
        name for name, expected in shipped.model_files.items()
        if not (folder / name).exists() or sha256_file(folder / name) != expected
    )


def ship(model_dir: Path, model_id: str, revision: str, built_on: dict[str, str] | None,
         root: Path | None = None) -> Path:
    """Copy a finished build into `data/bases/` with its record (the maintainers' step when a base
    recipe's suite is published). Returns the record's path."""
    target = _model_dir(root or SHIPPED_DIR, model_id) / revision
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    files = {}
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        shutil.copyfile(path, target / path.name)
        files[path.name] = sha256_file(path)
    record_path = target.with_suffix(".json")
    record_path.write_text(json.dumps({"built_on": built_on, "files": files}, indent=1, sort_keys=True) + "\n")
    return record_path
