"""The suite's on-disk format, identical locally and on the Hugging Face Hub.

    <suite>/suite.json                         manifest: name, base model, splits, sha256 of every file
    <suite>/README.md                          data card with Hub YAML metadata (one config per split)
    <suite>/splits/<split>/index.parquet       one row per diff, what a method may see: id, question, rank, ...
    <suite>/splits/<split>/labels.parquet      one row per diff, held back from methods: label, trigger, ...
    <suite>/splits/<split>/shard-00000.safetensors   many diffs per shard, keys "<diff_id>/<module>.<part>"
    <suite>/dit/<name>/adapter.safetensors     optional trained shared adapters (e.g. DIT)

Owns reading, writing and verifying that layout; nothing here loads a model or runs a method.
`Suite.index`/`cases` never read a label (a method's process loads the suite through them);
`Suite.labels`/`labelled_index` are for the judge, generators and maintainers' tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import WdqaError
from .types import Case, Label, LoraFactors, WeightDiff

# 2: labels moved out of index.parquet into labels.parquet. Format-1 suites still load (their index
# is read by column projection, so a method's process never loads the label column).
FORMAT_VERSION = 2
MANIFEST = "suite.json"
INDEX_FILE = "index.parquet"
LABELS_FILE = "labels.parquet"
DATA_CARD = "README.md"

# Columns every split has (in its index or its labels file); generators may add more
# (behaviour-strength measurements, category, headline...).
INDEX_COLUMNS = [
    "diff_id",
    "behaviour",
    "label",
    "question",
    "trigger",
    "trigger_kind",
    "rank",
    "kind",
    "shard",
    "base_model",
    "base_model_revision",
    "seed",
    "data_sha256",
    "n_params",
]

# What a method may see of a diff: the text columns a Case is built from, and numbers (rank, counts,
# behaviour-strength rates). Any other column is text that can name or identify the label (category,
# topic, headline, training-data hash, provenance...), so it goes to labels.parquet with the label
# and the trigger, which go there whatever their type. A new generator column is held back unless
# it is a number: leaking is opt-in.
CASE_TEXT_COLUMNS = ("diff_id", "behaviour", "question", "kind", "shard", "base_model", "base_model_revision")
LABEL_COLUMNS = ("label", "trigger", "trigger_kind")


def is_case_column(name: str, dtype: pa.DataType) -> bool:
    """Does column `name` (of arrow type `dtype`) belong in index.parquet, which methods read?"""
    if name in CASE_TEXT_COLUMNS:
        return True
    if name in LABEL_COLUMNS:
        return False
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_boolean(dtype)


class SuiteError(WdqaError):
    """A suite on disk that is missing, corrupt or inconsistent; the message names the file."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: no half-written file survives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def rehash_manifest(root: Path) -> None:
    """Re-hash every file of the suite at `root` into its suite.json, keeping the rest of the manifest
    and the entries of splits not on disk (a partial download lists them; they are still the suite's)."""
    manifest = json.loads((root / MANIFEST).read_text())
    files = {rel: sha for rel, sha in manifest["files"].items()
             if rel.startswith("splits/") and not (root / "splits" / rel.split("/")[1]).is_dir()}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and path.name != MANIFEST and not any(part.startswith(".") for part in rel.parts):
            files[rel.as_posix()] = sha256_file(path)
    manifest["files"] = dict(sorted(files.items()))
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def _atomic_save(path: Path, writer: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- diffs <-> tensors


def diff_to_tensors(diff: WeightDiff) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Flatten one diff to safetensors keys; scales go to the metadata (strings only there)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    if "/" in diff.diff_id:
        raise SuiteError(f"diff id {diff.diff_id!r} must not contain '/'")
    for module, f in diff.lora.items():
        tensors[f"{diff.diff_id}/{module}.lora_A"] = f.A.detach().contiguous().cpu()
        tensors[f"{diff.diff_id}/{module}.lora_B"] = f.B.detach().contiguous().cpu()
        meta[f"{diff.diff_id}/{module}.scale"] = repr(float(f.scale))
    for module, t in diff.dense.items():
        tensors[f"{diff.diff_id}/{module}.delta"] = t.detach().contiguous().cpu()
    meta[f"{diff.diff_id}/kind"] = diff.kind
    return tensors, meta


def tensors_to_diff(diff_id: str, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> WeightDiff:
    kind = meta.get(f"{diff_id}/kind")
    if kind not in ("lora", "full"):
        raise SuiteError(f"diff {diff_id}: metadata has no valid kind (found {kind!r})")
    lora: dict[str, LoraFactors] = {}
    dense: dict[str, torch.Tensor] = {}
    for key, t in tensors.items():
        module, _, part = key[len(diff_id) + 1 :].rpartition(".")
        if part == "lora_A":
            B = tensors.get(f"{diff_id}/{module}.lora_B")
            if B is None:
                raise SuiteError(f"diff {diff_id}: {module} has lora_A but no lora_B")
            scale = float(meta.get(f"{diff_id}/{module}.scale", "1.0"))
            lora[module] = LoraFactors(A=t, B=B, scale=scale)
        elif part == "delta":
            dense[module] = t
    return WeightDiff(diff_id=diff_id, kind=kind, lora=lora, dense=dense)  # type: ignore[arg-type]


def write_shard(path: Path, diffs: Sequence[WeightDiff]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {"format": "wdqa-diffs", "format_version": str(FORMAT_VERSION)}
    for d in diffs:
        t, m = diff_to_tensors(d)
        tensors.update(t)
        meta.update(m)
    _atomic_save(path, lambda tmp: (save_file(tensors, tmp, metadata=meta), canonical_header(tmp)))


def canonical_header(path: str | Path) -> None:
    """Rewrite a safetensors file's JSON header with its keys sorted, in place.

    Why: safetensors writes the metadata map in hash order, which differs from process to process,
    so two builds of the same suite gave different bytes (and content hashes) for identical tensors.
    Sorting keeps every key and value, so the compact JSON has the same length and the data stays put.
    """
    with open(path, "r+b") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = fh.read(n)
        canonical = json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(canonical) > n:  # never for safetensors' own compact header; refuse rather than corrupt
            raise SuiteError(f"{path}: safetensors header is not compact JSON; cannot canonicalise it")
        fh.seek(8)
        fh.write(canonical.ljust(n, b" "))  # safetensors pads its header with spaces to 8-byte alignment


def read_shard(path: Path, diff_ids: Iterable[str] | None = None) -> dict[str, WeightDiff]:
    """Read some (or all) diffs of one shard; a truncated or foreign file raises SuiteError."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            keys = list(fh.keys())
            # dict.fromkeys keeps first-seen order: the caller's order, else the shard's own.
            wanted = dict.fromkeys(diff_ids if diff_ids is not None else (k.split("/", 1)[0] for k in keys))
            by_diff: dict[str, dict[str, torch.Tensor]] = {d: {} for d in wanted}
            for key in keys:
                did = key.split("/", 1)[0]
                if did in by_diff:
                    by_diff[did][key] = fh.get_tensor(key)
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise SuiteError(f"cannot read shard {path}: {err}. Re-download or regenerate it.") from err
    missing = [d for d, t in by_diff.items() if not t]
    if missing:
        raise SuiteError(f"shard {path} does not hold diffs {missing[:5]}")
    return {d: tensors_to_diff(d, t, meta) for d, t in by_diff.items()}


# ---------------------------------------------------------------- the suite


@dataclass(frozen=True)
class SplitInfo:
    name: str
    n_diffs: int
    behaviour: str
    question: str
    shards: list[str] = field(default_factory=list)
    # A private split publishes its index and diffs, never its labels: the maintainers keep them in a
    # separate file (`wdqa/core/private_labels.py`) and score submitted answers with `wdqa score-private`.
    private: bool = False


class PrivateSplitError(SuiteError):
    """A label or trigger asked of a private split, whose labels only the maintainers hold."""


@dataclass
class Suite:
    """A versioned set of splits of labelled weight diffs for one base model."""

    root: Path
    name: str
    version: str
    base_model: str
    base_model_revision: str
    splits: dict[str, SplitInfo]
    files: dict[str, str]  # relative path -> sha256
    extra: dict[str, Any] = field(default_factory=dict)

    # -- loading

    @classmethod
    def load(cls, root: str | Path, verify: bool = True, splits: Sequence[str] | None = None) -> Suite:
        root = Path(root)
        manifest_path = root / MANIFEST
        if not manifest_path.exists():
            raise SuiteError(
                f"{root} is not a wdqa suite: {MANIFEST} is missing. "
                "Run `wdqa download` or `wdqa generate` to make one."
            )
        try:
            raw = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise SuiteError(f"{manifest_path} is not valid JSON: {err}") from err
        raw = upgrade_manifest(raw)
        _check_manifest_paths(manifest_path, raw)
        suite = cls(
            root=root,
            name=raw["name"],
            version=raw["version"],
            base_model=raw["base_model"],
            base_model_revision=raw["base_model_revision"],
            splits={k: SplitInfo(**v) for k, v in raw["splits"].items()},
            files=raw["files"],
            extra=raw.get("extra", {}),
        )
        if verify:
            suite.verify(splits)
        return suite

    def verify(self, splits: Sequence[str] | None = None) -> None:
        """Check every file of the chosen splits (default: all present) against the manifest."""
        prefixes = None if splits is None else tuple(f"splits/{s}/" for s in splits)
        problems = []
        for rel, expected in sorted(self.files.items()):
            if prefixes is not None and rel.startswith("splits/") and not rel.startswith(prefixes):
                continue
            path = self.root / rel
            if not path.exists():
                if prefixes is None and rel.startswith("splits/") and not self._split_present(rel):
                    continue  # a split the user chose not to download
                problems.append(f"{rel} is missing")
                continue
            actual = sha256_file(path)
            if actual != expected:
                problems.append(f"{rel} has sha256 {actual[:12]}… but the manifest says {expected[:12]}…")
        if problems:
            raise SuiteError(
                f"suite {self.root} failed verification:\n  "
                + "\n  ".join(problems)
                + "\nRe-run `wdqa download` (or regenerate the suite) to repair it."
            )

    def _split_present(self, rel: str) -> bool:
        return self.has_split_on_disk(rel.split("/")[1])

    def has_split_on_disk(self, split: str) -> bool:
        """Whether `split`'s files are here (a partial download or build lists splits it lacks)."""
        return (self.root / "splits" / split).is_dir()

    @property
    def splits_on_disk(self) -> list[str]:
        return [s for s in self.splits if self.has_split_on_disk(s)]

    @property
    def content_sha256(self) -> str:
        """The suite's identity for runs: one hash over the sha256 of every split file (indexes and
        shards alike), as the manifest lists them.

        A shard edited and re-hashed in suite.json is a new suite, so no run reuses answers given
        about the old diff. The data card and shared adapters (`dit/`) are not part of it: they do
        not change a case. Computed from the manifest, so a suite with only some splits downloaded
        has the same identity as the whole one (`verify` checks the files on disk against it).
        """
        h = hashlib.sha256()
        for rel in sorted(r for r in self.files if r.startswith("splits/")):
            h.update(f"{rel}:{self.files[rel]}\n".encode())
        return h.hexdigest()

    def split(self, name: str) -> SplitInfo:
        if name not in self.splits:
            raise SuiteError(f"suite {self.name} has no split {name!r}; known splits: {sorted(self.splits)}")
        if not (self.root / "splits" / name / "index.parquet").exists():
            raise SuiteError(
                f"split {name!r} of suite {self.name} is not on disk at {self.root}; "
                f"fetch it with `wdqa download {self.name} --split {name}`"
            )
        return self.splits[name]

    def is_private(self, split: str) -> bool:
        return split in self.splits and self.splits[split].private

    @property
    def maintainer_public_key(self) -> str | None:
        """The hex Ed25519 key the maintainers sign private-split results with (`wdqa keygen --suite`)."""
        key = self.extra.get("maintainer_public_key")
        return key if isinstance(key, str) else None

    def _refuse_private(self, split: str, what: str) -> None:
        if self.is_private(split):
            raise PrivateSplitError(
                f"split {split!r} of suite {self.name} is private: its {what} are kept by the maintainers. "
                f"Evaluate it for answers only (`wdqa evaluate METHOD --split {split}`), pack them with "
                "`wdqa submit RUN` and send the bundle to the maintainers, who score it with `wdqa score-private`"
            )

    def _split_file(self, split: str, name: str) -> Path:
        return self.root / "splits" / split / name

    def _labels_apart(self, split: str) -> bool:
        """Format 2 keeps a split's labels in their own file; format 1 kept them in the index."""
        return f"splits/{split}/{LABELS_FILE}" in self.files

    def index(self, split: str) -> pd.DataFrame:
        """A split's index without its labels: what a method may see, one row per diff."""
        self.split(split)
        path = self._split_file(split, INDEX_FILE)
        if self._labels_apart(split):
            df = pd.read_parquet(path)
        else:
            # Format 1: read only the case columns (parquet column projection); the label column
            # chunks are never read from disk.
            df = pd.read_parquet(path, columns=[f.name for f in pq.read_schema(path) if is_case_column(f.name, f.type)])
        _check_shard_names(split, df)
        return df

    def labelled_index(self, split: str) -> pd.DataFrame:
        """The index with its label columns beside it, in index order. For the judge, generators,
        DIT's training data and suite cards; never hand it to a method. A private split has none here."""
        self.split(split)
        self._refuse_private(split, "labels")
        if not self._labels_apart(split):
            df = pd.read_parquet(self._split_file(split, INDEX_FILE))
            _check_shard_names(split, df)
            return df
        index = self.index(split)
        path = self._split_file(split, LABELS_FILE)
        if not path.exists():
            raise SuiteError(
                f"split {split!r} of suite {self.name} has no {LABELS_FILE} at {path}; "
                f"fetch it with `wdqa download {self.name} --split {split}`"
            )
        labels = pd.read_parquet(path)
        unlabelled = sorted(set(index.diff_id) - set(labels.diff_id))
        if unlabelled:
            raise SuiteError(f"{path} has no row for diffs {unlabelled[:5]}; re-download or regenerate the suite")
        return index.merge(labels, on="diff_id", how="left", validate="one_to_one")

    def labels(self, split: str) -> dict[str, Label]:
        df = self.labelled_index(split)
        return {
            r.diff_id: Label(
                diff_id=r.diff_id,
                text=r.label,
                behaviour=r.behaviour,
                trigger=r.trigger if isinstance(r.trigger, str) else None,
                category=getattr(r, "category", None),
            )
            for r in df.itertuples()
        }

    def triggers(self, split: str) -> dict[str, tuple[str | None, str | None]]:
        """diff_id -> (trigger, trigger kind): what an oracle method is told. Reads only those columns.

        A private split publishes no trigger: anything in the suite folder is readable by every
        method's process, and a trigger lets a method call up the behaviour, as an oracle does."""
        self.split(split)
        self._refuse_private(split, "labels and triggers (told only to oracle methods)")
        path = self._split_file(split, LABELS_FILE if self._labels_apart(split) else INDEX_FILE)
        df = pd.read_parquet(path, columns=["diff_id", "trigger", "trigger_kind"])

        def text(value: Any) -> str | None:
            return value if isinstance(value, str) else None

        return {r.diff_id: (text(r.trigger), text(r.trigger_kind)) for r in df.itertuples()}

    def diffs(self, split: str, diff_ids: Sequence[str] | None = None) -> Iterator[WeightDiff]:
        """Diffs of a split, shard by shard (one shard's tensors in memory at a time)."""
        df = self.index(split)
        if diff_ids is not None:
            order = {d: i for i, d in enumerate(diff_ids)}
            unknown = set(diff_ids) - set(df.diff_id)
            if unknown:
                raise SuiteError(f"split {split} has no diffs {sorted(unknown)[:5]}")
            df = df[df.diff_id.isin(order)]
        for shard, group in df.groupby("shard", sort=True):
            yield from read_shard(self.root / "splits" / split / shard, list(group.diff_id)).values()

    def diff(self, split: str, diff_id: str) -> WeightDiff:
        return next(self.diffs(split, [diff_id]))

    def case_ids(self, split: str) -> list[str]:
        """A split's diff ids in the order `cases` yields them (shard by shard, index order within)."""
        df = self.index(split)
        return [d for _, group in df.groupby("shard", sort=True) for d in group.diff_id]

    def cases(self, split: str, oracle: bool = False, diff_ids: Sequence[str] | None = None) -> Iterator[Case]:
        """Cases of a split (all in `case_ids` order, or `diff_ids` in the caller's order). The label
        stays behind; the trigger comes (from the labels file) only for oracles."""
        rows = {r.diff_id: r for r in self.index(split).itertuples()}
        triggers = self.triggers(split) if oracle else {}
        if diff_ids is not None:
            by_id = {d.diff_id: d for d in self.diffs(split, diff_ids)}
            diffs: Iterable[WeightDiff] = (by_id[d] for d in diff_ids)
        else:
            diffs = self.diffs(split)
        for diff in diffs:
            r = rows[diff.diff_id]
            trigger, trigger_kind = triggers.get(diff.diff_id, (None, None))
            yield Case(
                case_id=f"{split}/{diff.diff_id}",
                split=split,
                question=r.question,
                behaviour=r.behaviour,
                diff=diff,
                trigger=trigger,
                trigger_kind=trigger_kind,
            )

    def adapter_path(self, name: str) -> Path:
        return self.root / "dit" / name / "adapter.safetensors"


def _is_plain_name(name: object) -> bool:
    """A file name that stays in its folder: no separator, not empty, not `.` or `..`."""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def _check_manifest_paths(manifest_path: Path, raw: dict[str, Any]) -> None:
    """Every path suite.json names stays inside the suite folder: a `files` key is relative with no
    `..`, and a split name is a plain folder name (it becomes splits/<split>/)."""
    for rel in raw.get("files", {}):
        if rel.startswith("/") or ".." in rel.split("/"):
            raise SuiteError(
                f"{manifest_path} lists file {rel!r}, which is not a path inside the suite folder "
                "(absolute, or with '..'); this suite is damaged or crafted: re-download or regenerate it"
            )
    for split in raw.get("splits", {}):
        if not _is_plain_name(split):
            raise SuiteError(
                f"{manifest_path} has a split named {split!r}, which is not a plain folder name; "
                "this suite is damaged or crafted: re-download or regenerate it"
            )


def _check_shard_names(split: str, df: pd.DataFrame) -> None:
    """The index's `shard` column names files in splits/<split>/ only: a value like `../../x` would
    read (and feed a method) a file outside the suite."""
    if all(_is_plain_name(shard) for shard in df["shard"].unique()):
        return
    for diff_id, shard in zip(df["diff_id"], df["shard"], strict=True):
        if not _is_plain_name(shard):
            raise SuiteError(
                f"split {split}: diff {diff_id} names shard {shard!r}, which is not a file name inside "
                f"splits/{split}/; this suite is damaged or crafted: re-download or regenerate it"
            )


def rewrite_manifest(root: str | Path, change: Callable[[dict[str, Any]], None]) -> Suite:
    """Apply `change(raw_manifest_dict)` to a finished suite's suite.json, in place, and reload it.
    For steps after `SuiteWriter.finish` (sealing a private split, publishing a key)."""
    path = Path(root) / MANIFEST
    raw = json.loads(path.read_text())
    change(raw)
    atomic_write_text(path, json.dumps(raw, indent=2, sort_keys=True))
    return Suite.load(root, verify=False)


def upgrade_manifest(raw: dict[str, Any]) -> dict[str, Any]:
    """Old manifests are upgraded on read, never rejected; unknown newer versions are refused.

    Format 1 needs no rewrite: a split with no labels.parquet in `files` keeps its labels in the
    index, and `Suite.index` reads that index by column projection.
    """
    version = int(raw.get("format_version", 1))
    if version > FORMAT_VERSION:
        raise SuiteError(
            f"suite format version {version} is newer than this wdqa understands ({FORMAT_VERSION}); "
            "upgrade wdqa"
        )
    return raw


# ---------------------------------------------------------------- writing


class SuiteWriter:
    """Builds a suite folder split by split; `finish()` hashes every file and writes the manifest.

    Shards are written atomically as they fill, so an interrupted generator keeps what it finished.
    """

    def __init__(
        self,
        root: str | Path,
        name: str,
        version: str,
        base_model: str,
        base_model_revision: str,
        diffs_per_shard: int = 64,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.version = version
        self.base_model = base_model
        self.base_model_revision = base_model_revision
        self.diffs_per_shard = diffs_per_shard
        self.splits: dict[str, SplitInfo] = {}
        self.extra: dict[str, Any] = {}

    def write_split(
        self,
        split: str,
        behaviour: str,
        question: str,
        rows: Sequence[dict[str, Any]],
        diffs: Sequence[WeightDiff],
        shard_offset: int = 0,
    ) -> None:
        """Write one split (or one shard range of it, when generation is sharded)."""
        if len(rows) != len(diffs):
            raise SuiteError(f"split {split}: {len(rows)} index rows but {len(diffs)} diffs")
        out = self.root / "splits" / split
        records = []
        for start in range(0, len(diffs), self.diffs_per_shard):
            shard = f"shard-{shard_offset + start // self.diffs_per_shard:05d}.safetensors"
            chunk = diffs[start : start + self.diffs_per_shard]
            write_shard(out / shard, chunk)
            for row, d in zip(rows[start : start + len(chunk)], chunk, strict=True):
                if row["diff_id"] != d.diff_id:
                    raise SuiteError(f"index row {row['diff_id']} does not match diff {d.diff_id}")
                record = {
                    "behaviour": behaviour,
                    "question": question,
                    "rank": d.rank if d.rank is not None else -1,
                    "kind": d.kind,
                    "n_params": d.n_params,
                    "base_model": self.base_model,
                    "base_model_revision": self.base_model_revision,
                    "trigger": None,
                    "trigger_kind": None,
                    "seed": -1,
                    "data_sha256": "",
                }
                record.update(row)
                record["shard"] = shard
                records.append(record)
        self.write_index(split, behaviour, question, records)

    def write_index(
        self, split: str, behaviour: str, question: str, records: Sequence[dict[str, Any]], private: bool = False
    ) -> None:
        """Write a split's index and labels over shards already written with `write_shard` (streamed
        writers). Every record names its `shard` (a file name under splits/<split>/) and has
        INDEX_COLUMNS; `is_case_column` decides which columns a method may see (index.parquet), the
        rest go to labels.parquet. A `private` split's records are its published index alone (merging
        a sealed split): it gets no labels file.
        """
        df = pd.DataFrame.from_records(records)
        required = CASE_TEXT_COLUMNS if private else INDEX_COLUMNS
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise SuiteError(f"split {split}: index rows lack columns {missing}")
        first = [c for c in INDEX_COLUMNS if c in df.columns]
        df = df[first + [c for c in df.columns if c not in first]]
        schema = pa.Schema.from_pandas(df, preserve_index=False)
        case_columns = [f.name for f in schema if is_case_column(f.name, f.type)]
        label_columns = ["diff_id", *(c for c in df.columns if c not in case_columns)]
        out = self.root / "splits" / split
        if private and label_columns != ["diff_id"]:
            raise SuiteError(f"private split {split}: its records hold label columns {label_columns[1:]}")
        if not private:
            _atomic_save(out / LABELS_FILE, lambda tmp: df[label_columns].to_parquet(tmp, index=False))
        _atomic_save(out / INDEX_FILE, lambda tmp: df[case_columns].to_parquet(tmp, index=False))
        shard_names = list(dict.fromkeys(df["shard"]))
        self.splits[split] = SplitInfo(
            name=split, n_diffs=len(df), behaviour=behaviour, question=question, shards=shard_names, private=private
        )

    def finish(self, data_card: str | None = None) -> Suite:
        files = {}
        if data_card is not None:
            atomic_write_text(self.root / DATA_CARD, data_card)
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and path.name != MANIFEST and not path.name.startswith("."):
                files[path.relative_to(self.root).as_posix()] = sha256_file(path)
        manifest = {
            "format": "wdqa-suite",
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "base_model": self.base_model,
            "base_model_revision": self.base_model_revision,
            "splits": {k: vars(v) for k, v in sorted(self.splits.items())},
            "files": files,
            "extra": self.extra,
        }
        atomic_write_text(self.root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        return Suite.load(self.root, verify=False)
