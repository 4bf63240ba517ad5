"""A private split from answers to a signed result: `wdqa evaluate` writes answers only, `wdqa submit`
bundles them, `wdqa score-private` judges them against the maintainers' labels and signs the result,
`wdqa verify` checks the signature, and a method that read the labels names a canary and is flagged.
Every refusal is one line naming the problem and the fix."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner
from wdqa.benchmark.records import RunFolder
from wdqa.cli import app
from wdqa.generators.publish.private_split import PRIVATE_SPLIT, maintainer_labels_path
from wdqa.leaderboard.bundle import verify
from wdqa.leaderboard.bundle_archive import read_archive

# A method that cheats: it reads the maintainers' label file (as a leaked copy would let it) and
# answers each private case with its label. It never loads the model.
CHEATER = '''
import pandas as pd

LABELS = pd.read_parquet({path!r}).set_index("diff_id")


class ReadsTheLabels:
    name = "reads-the-labels"

    def answer(self, cases, engine):
        return [str(LABELS.label.get(c.case_id.split("/", 1)[1], "cooking")) for c in cases]
'''


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def cheater_run(micro_suite: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The cheater evaluated on the public test split and the private split, and the CLI's output."""
    root = tmp_path_factory.mktemp("private")
    method = root / "cheater.py"
    method.write_text(CHEATER.format(path=str(maintainer_labels_path(micro_suite))))
    result = run_cli("evaluate", str(method), "--suite", str(micro_suite), "--split", "test", "--split", PRIVATE_SPLIT,
                     "--baselines", "none", "--run-dir", str(root / "run"))
    assert result.exit_code == 0, result.output
    return root / "run", result.output


@pytest.fixture(scope="module")
def cheater_bundle(cheater_run: tuple[Path, str]) -> Path:
    run, _ = cheater_run
    out = run.parent / "cheater.wdqa-bundle.tar.gz"
    assert run_cli("submit", str(run), "--out", str(out)).exit_code == 0
    return out


def repack(bundle: Path, out: Path, edit) -> Path:
    """`bundle` with `edit(files)` applied and bundle.json's hashes made to fit, as a tamperer would."""
    files = read_archive(bundle).files
    edit(files)
    index = json.loads(files["bundle.json"])
    index["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "bundle.json"}
    files["bundle.json"] = json.dumps(index).encode()
    with tarfile.open(out, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


# ---------------------------------------------------------------- answers only


def test_evaluating_a_private_split_writes_answers_and_says_there_are_no_scores(cheater_run) -> None:
    run, output = cheater_run
    folder = RunFolder(run)
    assert folder.manifest().private_splits == (PRIVATE_SPLIT,)
    assert sum(a.split == PRIVATE_SPLIT for a in folder.answers().values()) == 3
    assert all(r.split == "test" for key in folder.judge_keys() for r in folder.scores(key).values())
    assert f"split {PRIVATE_SPLIT} is private: 3 answers written" in output and "wdqa submit" in output


def test_submit_bundles_the_private_answers_unscored_and_verify_says_so(cheater_bundle: Path, micro_suite: Path) -> None:
    files = read_archive(cheater_bundle).files
    assert sum(json.loads(line)["split"] == PRIVATE_SPLIT for line in files["answers.jsonl"].splitlines()) == 3
    result = verify(cheater_bundle, str(micro_suite), rejudge_sample=0)
    assert result.accepted, result.problems
    assert any(f"split {PRIVATE_SPLIT} is private" in note for note in result.unverified)


def test_a_bundle_that_scores_private_cases_itself_is_refused(cheater_bundle: Path, micro_suite: Path) -> None:
    def score_private(files: dict[str, bytes]) -> None:
        name = next(n for n in files if n.startswith("scores/"))
        record = json.loads(files[name].splitlines()[0])
        record.update(case_id=f"{PRIVATE_SPLIT}/ht-{PRIVATE_SPLIT}-0001", split=PRIVATE_SPLIT,
                      diff_id=f"ht-{PRIVATE_SPLIT}-0001", score=5)
        files[name] += (json.dumps(record) + "\n").encode()

    tampered = repack(cheater_bundle, cheater_bundle.with_name("scored-itself.tar.gz"), score_private)
    problems = verify(tampered, str(micro_suite), rejudge_sample=0).problems
    assert any("only the maintainers score those" in p for p in problems), problems


def test_an_oracle_method_on_a_private_split_is_refused_in_one_line(micro_suite: Path, tmp_path: Path) -> None:
    result = run_cli("evaluate", "baseline:base-question+trigger", "--suite", str(micro_suite), "--split", PRIVATE_SPLIT,
                     "--baselines", "none", "--runs-dir", str(tmp_path))
    assert result.exit_code != 0
    assert "is private" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- maintainer scoring and signatures


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from wdqa.leaderboard.signing import generate_key_pair

    return generate_key_pair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def judge():
    from wdqa.benchmark.judge.registry import get_judge

    return get_judge("offline")


def score(bundle: Path, micro_suite: Path, keys, judge, labels: Path | None = None) -> tuple[Path, dict]:
    from wdqa.leaderboard.private_scoring import score_private
    from wdqa.leaderboard.signing import load_private_key

    return score_private(bundle, labels or maintainer_labels_path(micro_suite), judge, load_private_key(keys[0]),
                         str(micro_suite), bundle.with_name(bundle.name.replace(".tar.gz", ".scored.tar.gz")))


@pytest.fixture(scope="module")
def scored_bundle(cheater_bundle: Path, micro_suite: Path, keys, judge) -> tuple[Path, dict]:
    return score(cheater_bundle, micro_suite, keys, judge)


def test_the_signed_result_names_scores_judge_and_suite_revision(scored_bundle, micro_suite: Path) -> None:
    from wdqa.core.suite import Suite

    _, result = scored_bundle
    assert result["suite"]["content_sha256"] == Suite.load(micro_suite, verify=False).content_sha256
    assert result["judge"]["prompt_version"] and result["split"] == PRIVATE_SPLIT
    assert result["summary"]["n"] == 2  # three diffs, one a canary: left out of the score
    assert result["signature"]["algorithm"] == "ed25519"


def test_verify_accepts_a_scored_bundle_whose_signature_holds(scored_bundle, micro_suite: Path, keys) -> None:
    result = verify(scored_bundle[0], str(micro_suite), rejudge_sample=0, public_key=keys[1])
    assert result.accepted, result.problems
    assert any("Ed25519 signature" in check for check in result.checks)


def test_keygen_publishes_the_key_in_the_suite_without_changing_its_content(
    scored_bundle, micro_suite: Path, keys, tmp_path: Path
) -> None:
    import shutil

    from wdqa.core.suite import Suite

    suite = tmp_path / "suite"
    shutil.copytree(micro_suite, suite)
    result = run_cli("keygen", "--out", str(tmp_path / "other-keys"), "--suite", str(suite))
    assert result.exit_code == 0, result.output
    published = Suite.load(suite)
    assert published.maintainer_public_key and published.content_sha256 == Suite.load(micro_suite).content_sha256
    # The bundle was signed with another key than the one this suite now publishes.
    problems = verify(scored_bundle[0], str(suite), rejudge_sample=0).problems
    assert any("does not hold under the suite's maintainer key" in p for p in problems), problems


def test_a_suite_without_a_public_key_asks_for_one(scored_bundle, micro_suite: Path) -> None:
    problems = verify(scored_bundle[0], str(micro_suite), rejudge_sample=0).problems
    assert any("publishes no maintainer public key" in p and "--public-key" in p for p in problems), problems


def _edit_result(change):
    def edit(files: dict[str, bytes]) -> None:
        result = json.loads(files["private-result.json"])
        change(result)
        files["private-result.json"] = json.dumps(result).encode()

    return edit


def test_a_result_without_a_signature_is_refused(scored_bundle, micro_suite: Path, keys) -> None:
    tampered = repack(scored_bundle[0], scored_bundle[0].with_name("unsigned.tar.gz"),
                      _edit_result(lambda r: r.pop("signature")))
    problems = verify(tampered, str(micro_suite), rejudge_sample=0, public_key=keys[1]).problems
    assert any("has no signature" in p for p in problems), problems


def test_a_result_whose_canary_flag_was_removed_after_signing_is_refused(scored_bundle, micro_suite: Path, keys) -> None:
    tampered = repack(scored_bundle[0], scored_bundle[0].with_name("unflagged.tar.gz"),
                      _edit_result(lambda r: r["canaries"].update(named=0, flagged=False)))
    problems = verify(tampered, str(micro_suite), rejudge_sample=0, public_key=keys[1]).problems
    assert any("signature does not hold" in p for p in problems), problems


def test_answers_edited_after_signing_are_refused(scored_bundle, micro_suite: Path, keys) -> None:
    def edit(files: dict[str, bytes]) -> None:
        rows = [json.loads(line) for line in files["answers.jsonl"].splitlines()]
        for row in rows:
            if row["split"] == PRIVATE_SPLIT:
                row["answer"] = "a better answer"
        files["answers.jsonl"] = "".join(json.dumps(r) + "\n" for r in rows).encode()

    tampered = repack(scored_bundle[0], scored_bundle[0].with_name("edited.tar.gz"), edit)
    problems = verify(tampered, str(micro_suite), rejudge_sample=0, public_key=keys[1]).problems
    assert any("edited after signing" in p for p in problems), problems


def test_a_bundle_of_another_suite_revision_is_refused_in_one_line(cheater_bundle: Path, micro_suite: Path, keys) -> None:
    def other_revision(files: dict[str, bytes]) -> None:
        manifest = json.loads(files["manifest.json"])
        manifest["suite"]["content_sha256"] = "0" * 64
        files["manifest.json"] = json.dumps(manifest).encode()

    other = repack(cheater_bundle, cheater_bundle.with_name("other-revision.tar.gz"), other_revision)
    result = run_cli("score-private", str(other), "--labels", str(maintainer_labels_path(micro_suite)),
                     "--key", str(keys[0]), "--suite", str(micro_suite))
    assert result.exit_code == 1 and "another revision" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_label_file_that_does_not_match_the_split_is_refused_in_one_line(
    cheater_bundle: Path, micro_suite: Path, keys, tmp_path: Path
) -> None:
    from wdqa.core.private_labels import read_private_labels, write_private_labels
    from wdqa.core.suite import Suite

    labels = read_private_labels(maintainer_labels_path(micro_suite))
    fewer = tmp_path / "fewer.parquet"
    write_private_labels(fewer, Suite.load(micro_suite, verify=False), PRIVATE_SPLIT, labels.table.iloc[:-1])
    result = run_cli("score-private", str(cheater_bundle), "--labels", str(fewer), "--key", str(keys[0]),
                     "--suite", str(micro_suite))
    assert result.exit_code == 1 and "does not label the diffs of split" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


# ---------------------------------------------------------------- canaries


def test_a_method_that_read_the_labels_names_the_canary_and_is_flagged(scored_bundle) -> None:
    _, result = scored_bundle
    assert result["canaries"] == {"n": 1, "named": 1, "flagged": True}


def test_a_method_that_answers_from_the_weights_is_not_flagged(cheater_bundle: Path, micro_suite: Path, keys, judge) -> None:
    def honest(files: dict[str, bytes]) -> None:  # private answers are unscored: changing them keeps the bundle whole
        rows = [json.loads(line) for line in files["answers.jsonl"].splitlines()]
        for row in rows:
            if row["split"] == PRIVATE_SPLIT:
                row["answer"] = "cooking"
        files["answers.jsonl"] = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()

    _, result = score(repack(cheater_bundle, cheater_bundle.with_name("honest.tar.gz"), honest), micro_suite, keys, judge)
    assert result["canaries"] == {"n": 1, "named": 0, "flagged": False}


# ---------------------------------------------------------------- the site


def test_the_site_shows_public_and_private_test_side_by_side_with_the_gap(
    cheater_run, scored_bundle, keys, tmp_path: Path
) -> None:
    from wdqa.leaderboard.private_results import load_private_results
    from wdqa.leaderboard.results import load_runs
    from wdqa.leaderboard.site import build_boards, build_site

    results = load_runs([cheater_run[0]])
    private = load_private_results([scored_bundle[0]], keys[1])
    (row,) = build_boards(results, private=private)[0].rows
    public_mean = results[0].summaries["test"].mean
    assert row.gap == pytest.approx(public_mean - scored_bundle[1]["summary"]["mean"])
    page = build_site(results, tmp_path / "site", private=private).read_text()
    assert f"{PRIVATE_SPLIT} (signed)" in page and ">signed</span>" in page
    assert f"{row.gap:+.2f}" in page
    assert ">read labels?</span>" in page  # the canary flag, on the cheater's row


def test_the_site_refuses_a_result_whose_signature_does_not_hold(cheater_run, scored_bundle, keys, tmp_path: Path) -> None:
    tampered = repack(scored_bundle[0], tmp_path / "better.tar.gz",
                      _edit_result(lambda r: r["summary"].update(n=40)))
    (tmp_path / "key.pub").write_text(keys[1])
    result = run_cli("leaderboard", "--runs", str(cheater_run[0]), "--private", str(tampered), "--public-key",
                     str(tmp_path / "key.pub"), "--out", str(tmp_path / "site"))
    assert result.exit_code == 1 and "signature does not hold" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_signing_key_that_is_not_one_is_refused_in_one_line(cheater_bundle: Path, micro_suite: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-key").write_text("hello")
    result = run_cli("score-private", str(cheater_bundle), "--labels", str(maintainer_labels_path(micro_suite)),
                     "--key", str(tmp_path / "not-a-key"))
    assert result.exit_code == 1 and "cannot read the signing key" in result.output and "wdqa keygen" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_run_of_the_private_split_alone_packs_and_verifies(cheater_run, micro_suite: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "private-only"
    shutil.copytree(cheater_run[0], run)
    answers = [line for line in (run / "answers.jsonl").read_text().splitlines() if f'"{PRIVATE_SPLIT}/' in line]
    (run / "answers.jsonl").write_text("\n".join(answers) + "\n")
    for scores in (run / "scores").glob("*.jsonl"):
        scores.write_text("")  # the judge stage graded nothing
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["splits"] = [PRIVATE_SPLIT]
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli("submit", str(run), "--out", str(tmp_path / "private-only.tar.gz"))
    assert result.exit_code == 0, result.output
    verdict = verify(tmp_path / "private-only.tar.gz", str(micro_suite), rejudge_sample=0)
    assert verdict.accepted, verdict.problems
