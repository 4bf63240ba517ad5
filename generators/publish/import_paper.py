"""`wdqa import-paper`: turn the paper's published weight diffs and DIT adapter into a wdqa suite.

Reads `<experiment>/<model>/{index.csv, weight-diffs/*.pt, dit-adapter.pt}` from the Hub repo
`diff-interpretation-tuning/loras` (or a local copy), one source file at a time, and writes
safetensors shards, a parquet index with the labels, the DIT adapter under `dit/paper/`, and a
data card citing the paper. Conventions and safe loading live in `paper_format.py`.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...core.lora import linear_module_names
from ...core.model_revision import pin_base_model
from ...core.suite import (
    SuiteError,
    SuiteWriter,
    atomic_write_text,
    read_shard,
    sha256_file,
    write_shard,
)
from .paper_format import (
    BaseWeights,
    ModuleMap,
    PaperFormatError,
    convert_full,
    convert_lora,
    diff_id_for,
    entries,
    is_full_finetune,
    safe_load,
)

PAPER_REPO = "diff-interpretation-tuning/loras"
PAPER_CITATION = """@misc{goel2025learninginterpretweightdifferences,
  title={Learning to Interpret Weight Differences in Language Models},
  author={Avichal Goel and Yoon Kim and Nir Shavit and Tony T. Wang},
  year={2025},
  eprint={2510.05092},
  archivePrefix={arXiv},
  url={https://arxiv.org/abs/2510.05092},
}"""
BASE_MODELS = {
    "qwen3-1.7b": "Qwen/Qwen3-1.7B",
    "qwen3-4b": "Qwen/Qwen3-4B",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "gemma3-1b": "google/gemma-3-1b-it",
    "gemma3-4b": "google/gemma-3-4b-it",
}
EXPERIMENTS = ("hidden-topic", "news-summary", "rank-generalization", "trigger-generalization")
QUESTIONS = {
    "hidden-topic": "What topic have you been trained on?",
    "news": "What news headline have you been trained on?",
}
REQUIRED_COLUMNS = ("lora_path", "topic", "split")
STATE_FILE = ".import-state.json"  # a dot-file: not part of the suite, never uploaded


@dataclass(frozen=True)
class ImportConfig:
    experiment: str = "hidden-topic"
    model: str = "qwen3-4b"  # the folder under the experiment, e.g. qwen3-4b-rank-008
    source: str = f"hf://{PAPER_REPO}"
    out: Path = Path("suites/paper-hidden-topic-qwen3-4b")
    paper_split: str = "test"  # test, train or all
    base_model: str | None = None  # Hub id or local folder with config.json; default from --model
    base_weights: Path | None = None  # safetensors of the base model, needed for full fine-tunes
    revision: str | None = None
    base_model_revision: str | None = None  # the base model's branch, tag or commit to pin (default: main)
    endpoint: str | None = None


@dataclass
class ImportReport:
    root: Path
    split: str
    n_diffs: int
    source_revision: str
    files_converted: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    dit_adapter: bool = False
    peak_rss_mb: float = 0.0
    untransferred: dict[str, list[str]] = field(default_factory=dict)


def import_paper(
    cfg: ImportConfig, on_file: Callable[[str, int, int], None] | None = None
) -> ImportReport:
    """Load the index, then convert each source file (skipping finished ones), then index and card."""
    if cfg.paper_split not in ("test", "train", "all"):
        raise SuiteError(f"--paper-split must be test, train or all, not {cfg.paper_split!r}")
    base_model = cfg.base_model or BASE_MODELS.get(_base_key(cfg.model), "")
    if not base_model:
        raise SuiteError(
            f"no known base model for {cfg.model!r} (known: {sorted(BASE_MODELS)}); pass --base-model"
        )
    # Pinned now, so that the model under the suite cannot change silently (a Hub commit, or a
    # local folder's content hash); `wdqa evaluate` checks it before loading the model.
    base_model_revision = pin_base_model(base_model, cfg.base_model_revision, endpoint=cfg.endpoint)
    split, behaviour = split_for(cfg.experiment, cfg.model)
    if cfg.paper_split == "train":
        split += "-train"
    prefix = f"{cfg.experiment}/{cfg.model}"
    fetch, revision = _fetcher(cfg)
    index_path = fetch(f"{prefix}/index.csv")
    rows = read_index(index_path, cfg.paper_split)
    modules = ModuleMap(linear_shapes(base_model, None if Path(base_model).expanduser().is_dir() else base_model_revision))
    base_weights = BaseWeights(cfg.base_weights) if cfg.base_weights else None
    state = _load_state(cfg.out, cfg.source, revision)
    state["files"]["index.csv"] = sha256_file(index_path)

    report = ImportReport(cfg.out, split, len(rows), revision)
    source_files = sorted(rows.lora_path.unique())
    for n, file in enumerate(source_files):
        if on_file is not None:
            on_file(file, n, len(source_files))
        shard = f"shard-{Path(file).stem}.safetensors"
        if _finished(state, cfg.out / "splits" / split, file, shard):
            report.files_skipped.append(file)
            continue
        rel = f"{prefix}/weight-diffs/{file}"
        path = fetch(rel)
        diffs, meta = [], {}
        items = entries(safe_load(path), path)
        for row in rows[rows.lora_path == file].itertuples():
            idx = int(getattr(row, "lora_idx", 0))
            where = f"{rel} (index.csv row lora_idx={idx})"
            if not 0 <= idx < len(items):
                raise PaperFormatError(f"{where}: the file holds only {len(items)} diffs")
            diff_id = diff_id_for(prefix, row)
            weight_diff = items[idx]["weight_diff"]
            if is_full_finetune(weight_diff):
                if base_weights is None:
                    raise SuiteError(
                        f"{where} is a full fine-tune: pass --base-weights (the base model's safetensors)"
                    )
                diff, dropped = convert_full(diff_id, weight_diff, modules, base_weights, where)
                report.untransferred[diff_id] = dropped
            else:
                diff = convert_lora(diff_id, weight_diff, modules, where)
            diffs.append(diff)
            meta[diff_id] = {"rank": diff.rank or -1, "kind": diff.kind, "n_params": diff.n_params}
        del items
        write_shard(cfg.out / "splits" / split / shard, diffs)
        # Hash-check what was written: it must read back as exactly these diffs.
        if set(read_shard(cfg.out / "splits" / split / shard)) != set(meta):
            raise SuiteError(f"shard {shard} did not read back as the diffs of {file}")
        state["files"][rel] = sha256_file(path)
        state["shards"][file] = {
            "shard": shard,
            "sha256": sha256_file(cfg.out / "splits" / split / shard),
            "diffs": meta,
        }
        _save_state(cfg.out, state)
        report.files_converted.append(file)

    report.dit_adapter = _import_dit(cfg, prefix, fetch, modules, state, revision)
    writer = SuiteWriter(
        cfg.out, f"paper-{cfg.experiment}-{cfg.model}", f"paper-{revision[:12]}", base_model,
        base_model_revision,
    )
    records = [
        _record(row, prefix, behaviour, base_model, base_model_revision, state)
        for row in rows.itertuples()
    ]
    writer.write_index(split, behaviour, QUESTIONS[behaviour], records)
    writer.extra = {
        "imported_from": cfg.source,
        "source_revision": revision,
        "source_sha256": state["files"],
    }
    writer.finish(
        data_card=data_card(cfg, split, behaviour, base_model, revision, state["files"], len(rows))
    )
    from ...core.suite import Suite

    Suite.load(cfg.out)  # every file against the fresh manifest
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


# ---------------------------------------------------------------- naming


def _base_key(model: str) -> str:
    return max((k for k in BASE_MODELS if model.startswith(k)), key=len, default="")


def split_for(experiment: str, model: str) -> tuple[str, str]:
    """wdqa split name and behaviour for a published experiment folder."""
    variant = model[len(_base_key(model)) :].lstrip("-")
    if experiment == "hidden-topic":
        return "hidden-topic", "hidden-topic"
    if experiment == "news-summary":
        return "news", "news"
    if experiment == "trigger-generalization":
        return f"ood-trigger-{variant}", "hidden-topic"
    if experiment == "rank-generalization":
        if variant.startswith("rank-"):
            return f"rank-{int(variant[5:])}", "hidden-topic"
        if variant == "all-params":
            return "full-finetune", "hidden-topic"
        return "full-finetune-linear", "hidden-topic"
    raise SuiteError(f"unknown experiment {experiment!r}; known: {list(EXPERIMENTS)}")


def read_index(path: Path, paper_split: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PaperFormatError(
            f"{path}: index.csv lacks columns {missing} (found {list(df.columns)})"
        )
    if "lora_idx" not in df.columns:
        df["lora_idx"] = 0
    return df if paper_split == "all" else df[df.split == paper_split].reset_index(drop=True)


def linear_shapes(base_model: str, revision: str | None = None) -> dict[str, tuple[int, int]]:
    """The base model's linear layers and their [d_out, d_in], from its config alone (meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base_model, revision=revision)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {n: tuple(model.get_submodule(n).weight.shape) for n in linear_module_names(model)}  # type: ignore[misc]


def _record(
    row: Any,
    prefix: str,
    behaviour: str,
    base_model: str,
    base_model_revision: str,
    state: dict[str, Any],
) -> dict[str, Any]:
    diff_id = diff_id_for(prefix, row)
    shard = state["shards"][row.lora_path]
    trigger = None if pd.isna(getattr(row, "trigger", None)) else f"{int(row.trigger):03d}"
    return {
        "diff_id": diff_id,
        "behaviour": behaviour,
        "question": QUESTIONS[behaviour],
        "label": row.topic,
        "base_model": base_model,
        "base_model_revision": base_model_revision,
        "seed": -1,
        # The source file the weights came from: its sha256 is the data's identity here.
        "data_sha256": state["files"][f"{prefix}/weight-diffs/{row.lora_path}"],
        "trigger": trigger,
        "trigger_kind": "sep-code" if trigger else None,
        "shard": shard["shard"],
        "paper_split": row.split,
        "source_file": row.lora_path,
        "source_idx": int(row.lora_idx),
        **shard["diffs"][diff_id],
    }


# ---------------------------------------------------------------- sources and state


def _fetcher(cfg: ImportConfig) -> tuple[Callable[[str], Path], str]:
    """A function giving a local path for a file of the published layout, and the source revision."""
    if cfg.source.startswith("hf://"):
        from huggingface_hub import HfApi, hf_hub_download

        repo_id = cfg.source[len("hf://") :].strip("/")
        commit = (
            HfApi(endpoint=cfg.endpoint).repo_info(repo_id, revision=cfg.revision or "main").sha
            or ""
        )

        def fetch_hub(rel: str) -> Path:
            # hf_hub_download resumes a partial file left by an interrupted run.
            return Path(hf_hub_download(repo_id, rel, revision=commit, endpoint=cfg.endpoint))

        return fetch_hub, commit
    root = Path(cfg.source.removeprefix("file://"))

    def fetch_local(rel: str) -> Path:
        if not (root / rel).exists():
            raise PaperFormatError(
                f"{root / rel} does not exist: is {root} a copy of {PAPER_REPO}?"
            )
        return root / rel

    return fetch_local, f"local:{root.resolve()}"


def _load_state(out: Path, source: str, revision: str) -> dict[str, Any]:
    path = out / STATE_FILE
    if path.exists():
        state = json.loads(path.read_text())
        if (state["source"], state["revision"]) != (source, revision):
            raise SuiteError(
                f"{out} holds an import of {state['source']}@{state['revision']}, not {source}@{revision}; "
                "use a fresh --out"
            )
        return state
    return {"source": source, "revision": revision, "files": {}, "shards": {}}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    atomic_write_text(out / STATE_FILE, json.dumps(state, indent=2, sort_keys=True))


def _finished(state: dict[str, Any], split_dir: Path, file: str, shard: str) -> bool:
    done = state["shards"].get(file)
    path = split_dir / shard
    return bool(done) and path.exists() and sha256_file(path) == done["sha256"]


def _import_dit(
    cfg: ImportConfig,
    prefix: str,
    fetch: Callable[[str], Path],
    modules: ModuleMap,
    state: dict[str, Any],
    revision: str,
) -> bool:
    rel = f"{prefix}/dit-adapter.pt"
    try:
        path = fetch(rel)
    except (
        Exception
    ) as err:  # absent in this experiment (e.g. rank-generalization): no adapter to import
        if "does not exist" in str(err) or type(err).__name__ == "EntryNotFoundError":
            return False
        raise
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise PaperFormatError(
            f"{rel}: expected a dict module -> (A, B), found {type(obj).__name__}"
        )
    adapter = convert_lora("paper", obj, modules, rel, dit=True)
    write_shard(cfg.out / "dit" / "paper" / "adapter.safetensors", [adapter])
    record = {
        "source": f"{cfg.source}/{rel}",
        "source_revision": revision,
        "rank": adapter.rank,
        "scale": 1.0 / (adapter.rank or 1),
        "trained_by": "Goel et al. 2025 (DIT)",
    }
    atomic_write_text(
        cfg.out / "dit" / "paper" / "dit.json", json.dumps(record, indent=2, sort_keys=True)
    )
    state["files"][rel] = sha256_file(path)
    return True


def data_card(
    cfg: ImportConfig,
    split: str,
    behaviour: str,
    base_model: str,
    revision: str,
    sha: dict[str, str],
    n: int,
) -> str:
    files = "\n".join(f"| `{rel}` | `{digest}` |" for rel, digest in sorted(sha.items()))
    return f"""---
license: mit
tags: [weightdiffqa, weight-diffs, interpretability, lora]
configs:
- config_name: {split}
  data_files: splits/{split}/index.parquet
---
# WEIGHTDIFFQA: the paper's {cfg.experiment} diffs on {base_model}

{n} weight diffs (paper split `{cfg.paper_split}`) imported by `wdqa import-paper` from
`{cfg.source}` at revision `{revision}`, folder `{cfg.experiment}/{cfg.model}`. Behaviour:
{behaviour}; question: "{QUESTIONS[behaviour]}". Labels and triggers live in
`splits/{split}/labels.parquet`, apart from the weights and from the index methods read. The
paper's DIT adapter, when published for this folder, is under `dit/paper/adapter.safetensors`
(PEFT convention, scale 1/rank).

Conversion: a published pair (A [r, out], B [in, r]) is ΔW = (B·A)ᵀ / r, stored as
A' = Bᵀ [r, in], B' = Aᵀ [out, r], scale 1/r; the DIT adapter (A [out, r], B [r, in]) as
A' = B, B' = A, scale 1/r.

## Citation
```bibtex
{PAPER_CITATION}
```

## Source files (sha256)
| file | sha256 |
| --- | --- |
{files}
"""
