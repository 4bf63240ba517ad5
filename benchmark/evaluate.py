"""The `wdqa evaluate` recipe: start the method in its own process, answer, judge, summarise.

Reads top to bottom like the paper's evaluation section; the pieces live in worker/ (the method's
process), runner.py (answer stage), judge/stage.py (judge stage) and records.py (the run folder).
Labels stay in this process: the method's process gets the fit split's labels, and no others.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import WdqaError, WdqaWarning
from ..core.meter import Usage
from ..core.model_options import ModelOptions
from ..core.suite import Suite
from .judge.base import Judge
from .judge.stage import judge_run
from .method import MethodError
from .records import AnswerRecord, RunFolder, ScoreSummary, judge_key
from .run_manifest import RunJudge, RunManifest, RunMethod, RunSuite
from .runner import AnswerStats, run_answer_stage
from .worker import MethodProcess

PACKAGES = ("torch", "transformers", "peft", "safetensors", "huggingface-hub", "openai", "numpy", "pandas")


class RunMismatchError(WdqaError):
    """A run folder that holds answers of a different method version or suite."""


@dataclass
class RunResult:
    name: str
    oracle: bool
    run_dir: Path
    stats: AnswerStats
    summary: dict[str, dict[str, ScoreSummary]]
    private_answers: dict[str, int] = field(default_factory=dict)  # private split -> answers written, not scored


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
    method: MethodProcess,
    suite: Suite,
    splits: Sequence[str],
    judge: Judge,
    run_dir: Path,
    batch_size: int = 32,
    timeout_per_case: float | None = 300.0,
    limit: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    fit_split: str | None = "train",
    device: str | None = None,
    model_options: ModelOptions | None = None,
    max_batch: int = 64,
    budget_tokens: int | None = None,
) -> RunResult:
    """Run `method` (started with `MethodProcess.start`) on the splits, judge, and write `run_dir`.
    The method's process loads the base model as `model_options` say (`device`: the --device
    shortcut), and is closed once it has answered."""
    folder = RunFolder(run_dir)
    options = (model_options or ModelOptions()).with_device(device)
    if method.oracle:
        for split in splits:
            suite.triggers(split)  # a private split publishes none: refused before any model loads

    # 0. the method's process loads the suite without its labels, and binds to it (DIT's adapter)
    method.open(suite, options=options, max_batch=max_batch)
    manifest = _resumed(folder, _start_manifest(method, suite, splits, judge, seed, limit, options, max_batch), overwrite)
    folder.write_manifest(manifest)

    # 1. learned methods train on the fit split once, given its labels only (state saved in the run folder)
    if fit_split is not None:
        fitted = fit_learned_method(method, suite, fit_split, folder.path / "method-state")
        if fitted is not None:
            manifest = replace(manifest, fit=fitted)
            folder.write_manifest(manifest)

    # 2. answer every case not yet answered (appended as produced: a crash resumes here); a case
    #    that raises, hangs or ends the method's process fails alone, and the run goes on
    stats = run_answer_stage(method, suite, splits, folder, batch_size, timeout_per_case, limit, progress, budget_tokens)
    method.close()  # frees the model before judging

    # 3. judge every answer not yet judged by this judge and prompt version; a private split's
    #    answers wait for the maintainers (`wdqa submit`, then `wdqa score-private`)
    t0 = time.perf_counter()
    labels = {}
    for split in manifest.splits:  # this call's splits and those of earlier calls on the same run
        if split in manifest.private_splits:
            continue
        for diff_id, label in suite.labels(split).items():
            labels[f"{split}/{diff_id}"] = label
    judge_run(folder, judge, labels, seed=seed)
    judge_s = time.perf_counter() - t0

    # 4. record what was done, and the aggregates
    answers = folder.answers()
    manifest = replace(
        manifest,
        finished=_now(),
        device=method.device or manifest.device,
        model={**manifest.model, "loaded": {"device": method.device, "dtype": method.dtype}},
        timings={"answer_s": round(stats.seconds, 3), "judge_s": round(judge_s, 3)},
        generation=dict(method.generation),
        counts={
            "cases": len(answers),
            "failed": sum(1 for a in answers.values() if a.error),
            "over_budget": sum(1 for a in answers.values() if a.error and a.error.startswith("over budget")),
        },
        usage=total_usage(answers.values()),
        budget_tokens=budget_tokens,
    )
    folder.write_manifest(manifest)
    summary = folder.write_summary()
    # The run may also hold older judges' scores (kept side by side); report this judge's.
    current = judge_key(judge.name, judge.prompt_version)
    summary = {k: v for k, v in summary.items() if k == current}
    private = {s: sum(1 for a in answers.values() if a.split == s and a.error is None) for s in manifest.private_splits}
    return RunResult(method.name, method.oracle, run_dir, stats, summary, private)


def total_usage(answers: Iterable[AnswerRecord]) -> dict[str, int]:
    """The metered cases' counts summed, with `cases`: how many were metered (older runs' are not)."""
    total, cases = Usage(), 0
    for a in answers:
        if a.usage is not None:
            total.add(Usage.from_dict(a.usage))
            cases += 1
    return {**total.as_dict(), "cases": cases} if cases else {}


def fit_learned_method(method: MethodProcess, suite: Suite, split: str, state_dir: Path) -> dict[str, Any] | None:
    """Fit a method that defines `fit` on `split`, or reload the state an earlier run saved.

    Returns what this fit cost (the manifest's `fit`: split, cases, seconds, and what it read of M
    and M′), or None when the method is not a learned one or its saved state was reloaded. Its
    process gets the split's label texts and no other labels.
    """
    info = method.info
    if not info.learned:
        return None
    if info.persistent and (state_dir / ".complete").exists():
        method.load_state(state_dir)
        return None
    if split not in suite.splits:
        raise RunMismatchError(
            f"method {info.name} is a learned method but suite {suite.name} has no split {split!r} to fit on; "
            f"known splits: {sorted(suite.splits)} (choose one with --fit-split)"
        )
    diff_ids = suite.case_ids(split)
    labels = suite.labels(split)
    done = method.fit(split, diff_ids, [labels[d].text for d in diff_ids], state_dir if info.persistent else None)
    if info.persistent:
        (state_dir / ".complete").write_text("")
    return {"split": split, "cases": len(diff_ids), "seconds": round(done.seconds, 3), "usage": done.usage or {}}


def _start_manifest(
    method: MethodProcess, suite: Suite, splits: Sequence[str], judge: Judge, seed: int, limit: int | None,
    options: ModelOptions, max_batch: int,
) -> RunManifest:
    info = method.info
    return RunManifest(
        wdqa_version=__version__,
        git_commit=_git_commit(),
        method=RunMethod(
            name=info.name, spec=method.spec.spec, sha256=method.sha256, oracle=info.oracle, builtin=info.builtin,
            access=info.access,
        ),
        suite=RunSuite(
            name=suite.name,
            version=suite.version,
            base_model=suite.base_model,
            base_model_revision=suite.base_model_revision,
            content_sha256=suite.content_sha256,
            root=str(suite.root.resolve()),
            source=suite.extra.get("source", str(suite.root)),
            revision=suite.extra.get("revision"),
        ),
        splits=tuple(splits),
        private_splits=tuple(s for s in splits if suite.is_private(s)),
        limit=limit,
        seed=seed,
        judges=(RunJudge(judge_key(judge.name, judge.prompt_version), judge.name, judge.prompt_version),),
        packages=_package_versions(),
        python=platform.python_version(),
        device=options.device or "auto",  # the device the model ran on, once it has run
        # How the base model is loaded: recorded, and not part of the run's identity (docs/run-format.md).
        model={**options.as_record(), "max_batch": max_batch},
        started=_now(),
    )


def _resumed(folder: RunFolder, manifest: RunManifest, overwrite: bool) -> RunManifest:
    """The manifest to write: resuming only a run of the same method source on the same suite
    content (or, with `overwrite`, starting the folder again)."""
    if not folder.exists():
        return manifest
    old = folder.manifest()
    problems = []
    if old.method.sha256 != manifest.method.sha256:
        problems.append("the method's source changed")
    if old.suite.content_sha256 != manifest.suite.content_sha256:
        problems.append("the suite's content changed")
    if old.suite.base_model_revision != manifest.suite.base_model_revision:
        problems.append(
            f"the base model's revision changed ({old.suite.base_model_revision} -> {manifest.suite.base_model_revision})"
        )
    if not problems:
        # A run evaluated on one split and then another holds both: the manifest names them all,
        # so `wdqa judge` and `submit` find every answered case's labels.
        return replace(
            manifest, started=old.started or manifest.started, splits=tuple(dict.fromkeys([*old.splits, *manifest.splits])),
            private_splits=tuple(dict.fromkeys([*old.private_splits, *manifest.private_splits])),
            model=_keep_earlier_model_settings(folder, old.model, manifest.model),
            fit=old.fit,  # a resumed run reloads the state that fit saved
        )
    if not overwrite:
        raise RunMismatchError(
            f"run folder {folder.path} holds answers from another run ({' and '.join(problems)}); "
            "pass --overwrite to start it again, or --run-dir to write elsewhere"
        )
    for path in [folder.answers_path, *(folder.path / "scores").glob("*.jsonl"), folder.path / "summary.json"]:
        path.unlink(missing_ok=True)
    shutil.rmtree(folder.path / "method-state", ignore_errors=True)
    return manifest


def _keep_earlier_model_settings(folder: RunFolder, old: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """A resumed run loaded with other settings (dtype, device, ...) goes on: the same weights
    answer, computed otherwise. The manifest keeps every earlier setting, and the user is told."""
    earlier = list(old.get("earlier", []))
    before = {k: v for k, v in old.items() if k not in ("earlier", "loaded")}
    if before and before != dict(now):
        changed = ", ".join(f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in now if before.get(k) != now.get(k))
        warnings.warn(
            f"run folder {folder.path} answered its earlier cases with other model settings ({changed}); "
            "resuming, and the manifest records both (model.earlier)",
            WdqaWarning,
            stacklevel=3,
        )
        earlier.append({**before, "loaded": old.get("loaded")})
    return {**now, "earlier": earlier} if earlier else dict(now)


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
