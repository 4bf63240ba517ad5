"""The `wdqa evaluate` recipe: load the suite and base model, answer, judge, summarise.

Reads top to bottom like the paper's evaluation section; the pieces live in runner.py (answer
stage), judge/stage.py (judge stage) and records.py (the run folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from .engine import Engine, GenerationStats
from .errors import WdqaError
from .judge.base import Judge
from .judge.stage import judge_run
from .method import Method, MethodError
from .records import RunFolder, SplitSummary, judge_key
from .runner import AnswerStats, run_answer_stage
from .suite import Suite

PACKAGES = ("torch", "transformers", "peft", "safetensors", "huggingface-hub", "openai", "numpy", "pandas")


class RunMismatchError(WdqaError):
    """A run folder that holds answers of a different method version or suite."""


@dataclass
class RunSpec:
    """One method to run on a suite, and where its run folder goes."""

    method: Method
    spec: str  # how the user named it: a file path, module:object or a built-in name
    sha256: str
    builtin: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    name: str
    oracle: bool
    run_dir: Path
    stats: AnswerStats
    summary: dict[str, dict[str, SplitSummary]]


def run_dir_for(runs_root: Path, suite: Suite, method_name: str) -> Path:
    """runs/<suite>-<content hash>/<method name>, any character of the name but letters, digits and
    `-_.+` made `_` (`20-questions[openai:gpt-4.1]` -> `20-questions_openai_gpt-4.1_`). A name that
    leaves nothing, a hidden folder or a way out (``, `.`, `..`) is refused: its run would land in
    the runs root, or out of sight of `wdqa report runs/*/*`."""
    safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in method_name)
    if not safe or safe.startswith(".") or len(safe.encode()) > 200:
        raise MethodError(
            f"method name {method_name!r} cannot name a run folder (empty, starting with '.', or over 200 "
            "bytes); rename the method (its `name` attribute), or give the run folder with --run-dir"
        )
    return runs_root / f"{suite.name}-{suite.content_sha256[:10]}" / safe


def evaluate(
    run: RunSpec,
    suite: Suite,
    splits: Sequence[str],
    engine: Engine,
    judge: Judge,
    run_dir: Path,
    batch_size: int = 32,
    timeout_per_case: float | None = 300.0,
    limit: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    fit_split: str | None = "train",
) -> RunResult:
    folder = RunFolder(run_dir)
    run = _bind_suite(run, suite)
    manifest = _start_manifest(run, suite, splits, judge, engine, seed, limit)
    _check_resumable(folder, manifest, overwrite)
    folder.write_manifest(manifest)

    # 1. learned methods train on the suite's training split once (state saved in the run folder)
    if fit_split is not None:
        fit_learned_method(run.method, suite, fit_split, engine, folder.path / "method-state")

    # 2. answer every case not yet answered (appended as produced: a crash resumes here)
    engine.stats = GenerationStats()
    stats = run_answer_stage(
        run.method, suite, splits, engine, folder, batch_size, timeout_per_case, limit, run.spec, progress
    )

    # 3. judge every answer not yet judged by this judge and prompt version
    t0 = time.perf_counter()
    labels = {}
    for split in splits:
        for diff_id, label in suite.labels(split).items():
            labels[f"{split}/{diff_id}"] = (label.text, label.behaviour)
    judge_run(folder, judge, labels, seed=seed)
    judge_s = time.perf_counter() - t0

    # 4. record what was done, and the aggregates
    answers = folder.answers()
    manifest.update(
        finished=_now(),
        timings={"answer_s": round(stats.seconds, 3), "judge_s": round(judge_s, 3)},
        generation=vars(engine.stats).copy(),
        counts={"cases": len(answers), "failed": sum(1 for a in answers.values() if a.error)},
    )
    folder.write_manifest(manifest)
    summary = folder.write_summary()
    # The run may also hold older judges' scores (kept side by side); report this judge's.
    current = judge_key(judge.name, judge.prompt_version)
    summary = {k: v for k, v in summary.items() if k == current}
    return RunResult(run.method.name, bool(getattr(run.method, "oracle", False)), run_dir, stats, summary)


def _bind_suite(run: RunSpec, suite: Suite) -> RunSpec:
    """Methods whose artefacts ship with the suite (DIT's adapter under `dit/`) find them here.

    Their identity then includes the artefact (`fingerprint()`), so a retrained adapter is a new
    method version and never resumes from the old adapter's answers.
    """
    bind = getattr(run.method, "bind_suite", None)
    if callable(bind):
        bind(suite)
    fingerprint = getattr(run.method, "fingerprint", None)
    if not callable(fingerprint):
        return run
    digest = hashlib.sha256(f"{run.sha256}:{fingerprint()}".encode()).hexdigest()
    return dataclasses.replace(run, sha256=digest)


def fit_learned_method(method: Method, suite: Suite, split: str, engine: Engine, state_dir: Path) -> bool:
    """Fit a method that defines `fit` on `split`, or reload the state an earlier run saved.

    Returns True when the method is a learned one. Only the training split's labels are passed.
    """
    if not callable(getattr(method, "fit", None)):
        return False
    can_persist = callable(getattr(method, "save", None)) and callable(getattr(method, "load", None))
    if can_persist and (state_dir / ".complete").exists():
        method.load(state_dir)  # type: ignore[attr-defined]
        return True
    if split not in suite.splits:
        raise RunMismatchError(
            f"method {method.name} is a learned method but suite {suite.name} has no split {split!r} to fit on; "
            f"known splits: {sorted(suite.splits)} (choose one with --fit-split)"
        )
    cases = list(suite.cases(split))
    labels = suite.labels(split)
    method.fit(cases, [labels[c.case_id.split("/", 1)[1]].text for c in cases], engine)  # type: ignore[attr-defined]
    if can_persist:
        state_dir.mkdir(parents=True, exist_ok=True)
        method.save(state_dir)  # type: ignore[attr-defined]
        (state_dir / ".complete").write_text("")
    return True


def _start_manifest(
    run: RunSpec, suite: Suite, splits: Sequence[str], judge: Judge, engine: Engine, seed: int, limit: int | None
) -> dict[str, Any]:
    return {
        "wdqa_version": __version__,
        "git_commit": _git_commit(),
        "method": {
            "name": run.method.name,
            "spec": run.spec,
            "sha256": run.sha256,
            "oracle": bool(getattr(run.method, "oracle", False)),
            "builtin": run.builtin,
        },
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "base_model": suite.base_model,
            "base_model_revision": suite.base_model_revision,
            "content_sha256": suite.content_sha256,
            "root": str(suite.root.resolve()),
            "source": suite.extra.get("source", str(suite.root)),
            "revision": suite.extra.get("revision"),
        },
        "splits": list(splits),
        "limit": limit,
        "seed": seed,
        "judges": [{"key": judge_key(judge.name, judge.prompt_version), "name": judge.name, "prompt_version": judge.prompt_version}],
        "packages": _package_versions(),
        "python": platform.python_version(),
        "device": str(engine.device),
        "started": _now(),
    }


def _check_resumable(folder: RunFolder, manifest: dict[str, Any], overwrite: bool) -> None:
    """Resume only a run of the same method source on the same suite content."""
    if not folder.exists():
        return
    old = folder.manifest()
    problems = []
    if old["method"]["sha256"] != manifest["method"]["sha256"]:
        problems.append("the method's source changed")
    if old["suite"]["content_sha256"] != manifest["suite"]["content_sha256"]:
        problems.append("the suite's content changed")
    if not problems:
        manifest["started"] = old.get("started", manifest["started"])
        return
    if not overwrite:
        raise RunMismatchError(
            f"run folder {folder.path} holds answers from another run ({' and '.join(problems)}); "
            "pass --overwrite to start it again, or --run-dir to write elsewhere"
        )
    for path in [folder.answers_path, *(folder.path / "scores").glob("*.jsonl"), folder.path / "summary.json"]:
        path.unlink(missing_ok=True)
    shutil.rmtree(folder.path / "method-state", ignore_errors=True)


def _package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
