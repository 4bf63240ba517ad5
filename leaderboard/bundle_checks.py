"""What `wdqa verify` checks once a bundle's members are read: each check adds every problem it finds.

Owns the rules an honest bundle meets (hashes, judges, one answer and one score per case, scores
1-5, aggregates, the suite's cases and labels, a re-judged sample). Reading the archive is
`bundle_archive.py`'s, parsing records `bundle_records.py`'s; nothing here runs a method.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from wdqa.benchmark.records import AnswerRecord, ScoreRecord, judge_key, split_summaries
from wdqa.benchmark.run_manifest import RunManifest

from .bundle_records import read_json_object

if TYPE_CHECKING:  # the judge and the suite import torch; `wdqa submit` needs neither
    from wdqa.benchmark.judge.base import Judge
    from wdqa.core.suite import Suite
    from wdqa.core.types import Label

BUNDLE_FORMAT = "wdqa-bundle"
BUNDLE_VERSION = 1
INDEX = "bundle.json"
PRIVATE_RESULT = "private-result.json"  # the maintainers' signed result, added by `wdqa score-private`
REQUIRED = ("manifest.json", "answers.jsonl", "summary.json")
SCORE_FILE = re.compile(r"scores/([^/]+)\.jsonl")
TOLERANCE = 1e-9  # recomputed floats must equal the stated ones up to JSON round-off


@dataclass
class Verification:
    """What was checked and what did not add up; a bundle is accepted only with no problems.

    `unverified` names what could not be checked here (a judge that is not available offline);
    it does not refuse the bundle, and the CLI prints it beside the verdict."""

    bundle: str
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems


@dataclass
class BundleRecords:
    """The parsed members: one answer and one score per case and judge (the last of each)."""

    manifest: RunManifest
    summary: dict[str, Any]
    answers: dict[str, AnswerRecord]
    scores: dict[str, dict[str, ScoreRecord]]  # judge key -> case_id -> record
    malformed: set[str] = field(default_factory=set)  # members with lines that are not records


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", …" if len(items) > n else "")


def check_index(files: Mapping[str, bytes], v: Verification) -> bool:
    """Hashes against bundle.json and the bundle's layout; False when the members needed to read
    on are missing."""
    if INDEX not in files:
        v.problems.append(
            f"{INDEX} is missing: this is not a wdqa bundle (make one with `wdqa submit RUN_DIR`)"
        )
        return False
    index = read_json_object(dict(files), INDEX, v.problems)
    if index is None:
        return False
    version = index.get("format_version")
    if (
        index.get("format") != BUNDLE_FORMAT
        or not isinstance(version, int)
        or version > BUNDLE_VERSION
    ):
        v.problems.append(
            f"{INDEX} names format {index.get('format')!r} v{version}; this wdqa reads {BUNDLE_FORMAT} up to "
            f"v{BUNDLE_VERSION}"
        )
        return False
    listed = index.get("files")
    if not isinstance(listed, dict) or not all(isinstance(h, str) for h in listed.values()):
        v.problems.append(f"{INDEX} has no 'files' object of path -> sha256")
        return False
    for name, expected in sorted(listed.items()):
        if name not in files:
            v.problems.append(f"{name} is listed in {INDEX} but missing from the bundle")
        elif (actual := hashlib.sha256(files[name]).hexdigest()) != expected:
            v.problems.append(f"{name} has sha256 {actual[:12]}… but {INDEX} says {expected[:12]}…")
    for name in sorted(set(files) - set(listed) - {INDEX}):
        v.problems.append(f"{name} is in the bundle but not listed in {INDEX}")
    for name in sorted(files):
        if name not in (*REQUIRED, INDEX, PRIVATE_RESULT) and not SCORE_FILE.fullmatch(name):
            v.problems.append(
                f"{name} is not part of a bundle (it holds {', '.join(REQUIRED)}, scores/*.jsonl, {INDEX}, "
                f"{PRIVATE_RESULT})"
            )
    missing = [name for name in REQUIRED if name not in files]
    for name in missing:
        v.problems.append(f"{name} is missing from the bundle")
    v.checks.append(f"sha256 of {len(listed)} files against {INDEX}")
    return not missing


def check_judges(records: BundleRecords, v: Verification) -> None:
    """Every score file belongs to a judge the manifest lists, and every record to that judge."""
    stated = {j.key: j for j in records.manifest.judges}
    for key in sorted(set(stated) - set(records.scores)):
        v.problems.append(
            f"the manifest lists judge {key} but the bundle has no scores/{key}.jsonl"
        )
    for key, scores in sorted(records.scores.items()):
        entry = stated.get(key)
        if entry is None:
            v.problems.append(
                f"scores/{key}.jsonl is not among the manifest's judges {sorted(stated)}"
            )
            continue
        name, version = entry.name, entry.prompt_version
        if judge_key(name, version) != key:
            v.problems.append(
                f"the manifest's judge {key} names {name!r} prompt {version!r}, which is not that key"
            )
            continue
        wrong = sorted(
            c for c, r in scores.items() if (r.judge, r.prompt_version) != (name, version)
        )
        if wrong:
            r = scores[wrong[0]]
            v.problems.append(
                f"scores/{key}.jsonl: {len(wrong)} record(s) were graded by another judge version than the manifest "
                f"states ({name} prompt {version}); first: case {r.case_id} says {r.judge} prompt {r.prompt_version}"
            )
    v.checks.append("judge name and prompt version of every score against the manifest")


def _score_problem(r: ScoreRecord) -> str | None:
    if r.failed:
        return None if r.score is None else f"is marked failed but has score {r.score}"
    if r.score is None or 1 <= r.score <= 5:
        return None
    return f"has score {r.score}, not an integer 1-5"


def check_cases(records: BundleRecords, v: Verification) -> None:
    """One answer per case, every answered case of a public split scored once by each judge, on that
    same answer; a private split's answers scored by none (the maintainers score them)."""
    private = set(records.manifest.private_splits)
    answers = {c: a for c, a in records.answers.items() if a.split not in private}
    if answers and not records.scores:
        v.problems.append("the bundle holds no scores/*.jsonl: judge the run before `wdqa submit`")
    for key, scores in sorted(records.scores.items()):
        scored_private = sorted(c for c, r in scores.items() if r.split in private)
        if scored_private:
            v.problems.append(
                f"scores/{key}.jsonl scores {len(scored_private)} case(s) of a private split (first: "
                f"{_first(scored_private)}); only the maintainers score those, with their labels"
            )
    named = [("answers.jsonl", r) for r in records.answers.values()]
    named += [(f"scores/{k}.jsonl", r) for k, rs in records.scores.items() for r in rs.values()]
    for file in sorted({f for f, _ in named}):
        odd = sorted(
            r.case_id for f, r in named if f == file and r.case_id != f"{r.split}/{r.diff_id}"
        )
        if odd:
            v.problems.append(
                f"{file}: {len(odd)} case id(s) are not <split>/<diff_id> (first: {_first(odd)})"
            )
    for key, scores in sorted(records.scores.items()):
        file = f"scores/{key}.jsonl"
        # A malformed line's case is named already; comparing case sets would name it again.
        compare_sets = not {file, "answers.jsonl"} & records.malformed
        unscored = sorted(set(answers) - set(scores)) if compare_sets else []
        if unscored:
            v.problems.append(
                f"{file} has no score for {len(unscored)} answered case(s) (first: {_first(unscored)})"
            )
        unanswered = sorted(set(scores) - set(records.answers)) if compare_sets else []
        if unanswered:
            v.problems.append(
                f"{file} scores {len(unanswered)} case(s) answers.jsonl lacks (first: {_first(unanswered)})"
            )
        common = sorted(set(scores) & set(answers))
        edited = [c for c in common if scores[c].answer != answers[c].answer]
        if edited:
            v.problems.append(
                f"{file}: {len(edited)} scored answer(s) differ from answers.jsonl (first: {_first(edited)})"
            )
        failed = [
            c
            for c in common
            if scores[c].failed != (answers[c].error is not None or answers[c].answer is None)
        ]
        if failed:
            v.problems.append(
                f"{file}: {len(failed)} score(s) say failed where answers.jsonl says otherwise or the reverse "
                f"(first: {_first(failed)}); a case without an answer is failed and scored as 1"
            )
        bad = [(c, p) for c, r in sorted(scores.items()) if (p := _score_problem(r)) is not None]
        if bad:
            v.problems.append(
                f"{file}: {len(bad)} score(s) are not valid (first: case {bad[0][0]} {bad[0][1]})"
            )
    v.checks.append(
        "one answer and one score per case and judge, on the same answer, scores integers 1-5"
    )


def _close(said: Any, real: float) -> bool:
    if isinstance(said, bool) or not isinstance(said, int | float):
        return False
    if math.isnan(said) and math.isnan(real):
        return True
    return math.isclose(float(said), real, rel_tol=0.0, abs_tol=TOLERANCE)


def _compare_split(said: Any, real: dict[str, Any], where: str, v: Verification) -> None:
    if not isinstance(said, dict):
        v.problems.append(f"summary.json {where} is not an object")
        return
    for name in ("n", "failed", "invalid"):
        if said.get(name) != real[name] or isinstance(said.get(name), bool):
            v.problems.append(
                f"summary.json states {where} {name} = {said.get(name)} but the per-case scores give {real[name]}"
            )
    for name in ("mean", "ci_low", "ci_high"):
        if not _close(said.get(name), real[name]):
            v.problems.append(
                f"summary.json states {where} {name} = {said.get(name)} but the per-case scores give {real[name]}"
            )
    dist = said.get("dist") if isinstance(said.get("dist"), dict) else {}
    for k in "12345":
        if not _close(dist.get(k, 0.0), real["dist"].get(k, 0.0)):
            v.problems.append(
                f"summary.json states {where} share of score {k} = {dist.get(k)} but the per-case scores give "
                f"{real['dist'].get(k, 0.0)}"
            )


def check_summary(records: BundleRecords, v: Verification) -> None:
    """The means, CIs, counts and shares recomputed from the per-case scores."""
    stated = records.summary
    for key in sorted(set(stated) - set(records.scores)):
        v.problems.append(
            f"summary.json states judge {key} but the bundle has no scores/{key}.jsonl"
        )
    for key, scores in sorted(records.scores.items()):
        if f"scores/{key}.jsonl" in records.malformed or any(
            _score_problem(r) for r in scores.values()
        ):
            continue  # the bad records are named already; a mean over what is left means nothing
        recomputed = split_summaries(scores.values())
        said = stated.get(key)
        if not isinstance(said, dict):
            v.problems.append(
                f"summary.json states nothing for judge {key} although the bundle scores it"
            )
            continue
        for split in sorted(set(said) - set(recomputed)):
            v.problems.append(
                f"summary.json states {key} / {split} but the bundle has no scores for it"
            )
        for split, real in recomputed.items():
            if split not in said:
                v.problems.append(
                    f"summary.json has no {key} / {split} although the bundle scores it"
                )
            else:
                _compare_split(said[split], asdict(real), f"{key} / {split}", v)
    v.checks.append("aggregates recomputed from the per-case scores against summary.json")


def check_suite(
    records: BundleRecords, suite: Suite, where: str, v: Verification
) -> dict[str, Label]:
    """The suite's content hash, its splits, every case of each scored split and nothing else, and
    the labels. Returns the suite's label of every bundle case the suite has."""
    said = records.manifest.suite.content_sha256
    if said != suite.content_sha256:
        v.problems.append(
            f"suite content hash differs: the manifest says {str(said)[:16]}… but suite "
            f"{suite.name} {suite.version} at {where} has {suite.content_sha256[:16]}…; the run scored another "
            "suite revision"
        )
    cases = {c: r.split for c, r in records.answers.items()}
    for scores in records.scores.values():
        cases.update({c: r.split for c, r in scores.items()})
    scored_splits = sorted(set(cases.values()))
    for split in sorted(set(records.manifest.splits) - set(scored_splits)):
        v.problems.append(
            f"the manifest says split {split} was run but the bundle holds none of its cases"
        )
    said_private = set(records.manifest.private_splits)
    really_private = {s for s in scored_splits if suite.is_private(s)}
    if said_private != really_private:
        v.problems.append(
            f"the manifest names private splits {sorted(said_private)} but of the bundle's splits suite {suite.name} "
            f"has {sorted(really_private)} private; re-run `wdqa evaluate` with this wdqa and submit again"
        )
    labels: dict[str, Label] = {}
    for split in scored_splits:
        in_bundle = sorted(c for c, s in cases.items() if s == split)
        if split not in suite.splits:
            v.problems.append(
                f"split {split} does not exist in suite {suite.name} (its splits: {', '.join(sorted(suite.splits))}); "
                f"its {len(in_bundle)} case(s) cannot be checked"
            )
            continue
        split_labels: dict[str, Label | None]
        if suite.is_private(split):  # no labels here: its cases are checked against the published index
            split_labels = {f"{split}/{d}": None for d in suite.case_ids(split)}
        else:
            split_labels = {f"{split}/{d}": label for d, label in suite.labels(split).items()}
        missing = sorted(set(split_labels) - set(in_bundle))
        if missing:
            v.problems.append(
                f"split {split}: {len(missing)} of its {len(split_labels)} cases are not in the bundle "
                f"(first: {_first(missing)}); a result covers every case of a split (run without --limit)"
            )
        foreign = sorted(set(in_bundle) - set(split_labels))
        if foreign:
            v.problems.append(
                f"split {split}: {len(foreign)} case(s) are not in the suite (first: {_first(foreign)})"
            )
        labels.update({c: label for c in in_bundle if (label := split_labels.get(c)) is not None})
    for key, scores in sorted(records.scores.items()):
        wrong = sorted(c for c, r in scores.items() if c in labels and r.label != labels[c].text)
        if wrong:
            v.problems.append(
                f"scores/{key}.jsonl: {len(wrong)} label(s) differ from the suite's (first: {_first(wrong)}); "
                "labels come from the suite, never the bundle"
            )
    v.checks.append(
        f"suite {suite.name} at {where}: content hash, {len(scored_splits)} split(s) complete, labels"
    )
    return labels


def rejudge(
    scores: dict[str, ScoreRecord],
    key: str,
    judge: Judge,
    labels: Mapping[str, Label],
    manifest_seed: int,
    sample: int,
    max_disagreement: float,
    seed: int,
    v: Verification,
) -> None:
    """Grade again, against the suite's labels, a random sample of the scored cases and every
    unusable verdict; refuse when more than `max_disagreement` of either group gets another score.

    Unusable verdicts are left out of the mean, so marking low scores unusable would raise it: they
    are all re-judged, and counted apart so a few of them cannot hide in a large sample."""
    from wdqa.benchmark.judge.base import JudgeRequest, rubric_for
    from wdqa.benchmark.judge.stage import case_seed

    gradable = [
        r
        for c, r in sorted(scores.items())
        if c in labels and not r.failed and r.answer is not None
    ]
    valid = [r for r in gradable if r.score is not None]
    groups = {
        "sampled": random.Random(seed).sample(valid, min(sample, len(valid))),
        "unusable-verdict": [r for r in gradable if r.score is None],
    }
    chosen = groups["sampled"] + groups["unusable-verdict"]
    if not chosen:
        v.checks.append(f"re-judged nothing of {key}: no answered case to grade")
        return
    requests = [
        JudgeRequest(
            r.case_id,
            rubric_for(labels[r.case_id].behaviour),
            labels[r.case_id].text,
            r.answer or "",
            case_seed(r.case_id, manifest_seed),
        )
        for r in chosen
    ]
    regraded = {r.case_id: s.value for r, s in zip(chosen, judge.score(requests), strict=True)}
    for group, records in groups.items():
        differ = [
            (r.case_id, r.score, regraded[r.case_id])
            for r in records
            if regraded[r.case_id] != r.score
        ]
        if not records:
            continue
        share = len(differ) / len(records)
        drawn = f" (seed {seed})" if group == "sampled" else ""
        v.checks.append(
            f"re-judged {len(records)} {group} case(s){drawn} of {key} against the suite's labels: "
            f"{len(differ)} differ"
        )
        if share > max_disagreement:
            shown = "; ".join(f"{c}: stated {a}, re-judged {b}" for c, a, b in differ[:3])
            v.problems.append(
                f"re-judging {len(records)} {group} cases of {key} gave a different score for {len(differ)} "
                f"({share:.0%} > the allowed {max_disagreement:.0%}): {shown}"
            )
