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
from wdqa.benchmark.cli import app
from wdqa.benchmark.records import RunFolder
from wdqa.generators.private_split import PRIVATE_SPLIT, maintainer_labels_path
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
