"""Every `wdqa` command the README shows is a test: each one (fenced shell blocks and inline code)
parses against the CLI as typed, and the Hub journey's blocks run as typed, in order, through the
installed `wdqa` entry point in a fresh shell, against the local fake Hub. A README command that
drifts from the CLI fails here.

Run as typed: publish, download, evaluate (the README's own `my_method.py`, with and without
`--model-args`), report (runs and a published table), leaderboard, submit, verify, import-paper
(from a fake Hub laid out like the paper's `loras` repo, over a real-architecture Qwen3).
Parsed only, each for the reason in NOT_RUN: commands that build the tiny model or suite (minutes
to tens of minutes; the slow tests build the micro recipe) or that need a GPU this machine lacks.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from fake_hub import FakeHub, running_fake_hub
from random_models import random_lora, random_model, random_tokenizer, save_real_architecture
from wdqa.cli import app
from wdqa.core.suite import Suite, SuiteWriter

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WDQA = str(Path(sys.executable).parent / "wdqa")

# README commands not run here, and why (a new README command must be run below or listed here).
NOT_RUN = {
    "wdqa evaluate submissions/examples/ask_directly.py": "builds the test split on the shipped tiny base on first use (about 6 min)",
    "wdqa generate tiny --out suites/tiny": "builds all 440 diffs of the tiny suite (tens of minutes)",
    "wdqa generate tiny-base --out tiny-base": "pretrains the tiny base (about 15 min); tests/test_shipped_base.py runs it with --micro",
    "wdqa generate tiny --out part0 --shard 0/2": "builds half the tiny suite",
    "wdqa generate tiny --out suites/tiny --merge part0 --merge part1": "needs the two built pieces",
    "wdqa generate tiny --out suites/tiny --ray auto": "a Ray cluster build",
    "wdqa generate tiny --splits test": "builds the tiny model and the test split (about 16 min)",
    "wdqa generate extra suites/tiny": "trains every extra split over the full tiny suite",
    "wdqa generate extra suites/tiny --out extra --pieces 16": "trains every extra split over the full tiny suite",
    "wdqa evaluate my_method.py --suite my-org/wdqa-tiny --model-args dtype=bf16,device=cuda,attn_implementation=sdpa": "needs a GPU",
    # The private split's journey: tests/test_private_scoring.py runs these same steps on the micro suite.
    "wdqa evaluate my_method.py --split test --split private-test": "builds the tiny model and its test and private-test splits on first use",
    "wdqa keygen --out keys/ --suite suites/tiny": "needs the built tiny suite",
    "wdqa score-private my-method.tar.gz --labels suites/tiny.maintainer/private-test.labels.parquet --key keys/maintainer-ed25519.key": "needs the built tiny suite and its label file",
    "wdqa verify my-method.scored.tar.gz": "needs the scored bundle above",
    "wdqa leaderboard runs/*/* --suite suites/tiny --private my-method.scored.tar.gz --out site/": "needs the scored bundle above",
}
# Placeholders a user fills in; the run below puts the real value in their place.
PLACEHOLDERS = {"runs/tiny-…/my-method": "runs/tiny-*/contrast"}


def fenced_commands() -> list[str]:
    """The `wdqa ...` lines of the README's ```bash blocks, without their trailing comments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            if line.strip().startswith("wdqa "):
                commands.append(re.sub(r"\s+#.*$", "", line.strip()))  # no README command has a '#' of its own
    return commands


def inline_commands() -> list[str]:
    """`wdqa ...` in the README's inline code spans (the speed table, the prose)."""
    return sorted({m for m in re.findall(r"`(wdqa [^`]+)`", README.read_text()) if "\n" not in m})


def method_example() -> str:
    """The README's `my_method.py`: its first ```python block."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]


def parse(args: list[str]) -> Any:
    """The leaf command `wdqa ARGS` names, after click parsed and converted every parameter (as a
    user's invocation does, without running the command). Typer vendors its own click: groups are
    recognised by what they do, not by click's classes."""
    command = typer.main.get_command(app)
    ctx = command.make_context("wdqa", list(args))
    while hasattr(command, "resolve_command"):
        name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None, f"no command {name!r}"
        ctx = sub.make_context(name or "", rest, parent=ctx)
        command = sub
    return command


def command_path(words: list[str]) -> Any:
    """The command `wdqa WORDS` names (a mention in prose, like `wdqa evaluate`), or a failure."""
    command = typer.main.get_command(app)
    ctx = command.make_context("wdqa", [], resilient_parsing=True)
    for word in words:
        if not hasattr(command, "get_command"):
            break  # a leaf: the rest are its arguments
        sub = command.get_command(ctx, word)
        assert sub is not None, f"the README names `wdqa {' '.join(words)}`, and the CLI has no {word!r}"
        command = sub
    return command


def check_parses(command: str) -> None:
    # `...` and `…` stand for a value or a command; a path that does not exist here is the run's
    # concern, not drift.
    args = ["X" if a in ("...", "…") else a for a in shlex.split(command)[1:]]
    if "--help" in args:
        return  # --help stops parsing; test_cli_help runs every help screen
    if all(not a.startswith("-") for a in args) and len(args) <= 2 and hasattr(command_path(args), "resolve_command"):
        return  # names a group (`wdqa generate`)
    try:
        parse(args)
    except Exception as err:
        if "does not exist" in str(err) or "No such command 'X'" in str(err):
            return
        if type(err).__name__ in ("MissingParameter", "NoArgsIsHelpError") and all(not a.startswith("-") for a in args):
            command_path(args)  # a command named in prose, without its arguments (`wdqa import-paper`)
            return
        raise


@pytest.mark.parametrize("command", fenced_commands())
def test_every_fenced_readme_command_parses_against_the_cli(command: str) -> None:
    check_parses(command)


@pytest.mark.parametrize("command", inline_commands())
def test_every_command_named_in_the_readme_text_exists_and_parses(command: str) -> None:
    check_parses(command)


def test_every_fenced_readme_command_is_run_or_says_why_not() -> None:
    unclassified = [c for c in fenced_commands() if c not in NOT_RUN and c not in JOURNEY and c != IMPORT_PAPER]
    assert not unclassified, f"README commands neither run by a test nor listed in NOT_RUN: {unclassified}"


# ---------------------------------------------------------------- the Hub journey, as typed

# Quick (the default run): the suite to the Hub and back, and a published table as a report.
HUB_ROUND_TRIP = [
    "wdqa publish suites/tiny --repo-id my-org/wdqa-tiny",
    "wdqa download my-org/wdqa-tiny --split test",
    "wdqa report --table published.csv --method-col method --split-col setup --score-col score",
]
# Slow (-m slow; minutes on a busy 2-core machine: five methods, 20 questions sampling 256 tokens,
# the offline judge's encoders loaded by evaluate and verify): evaluate to verify.
JOURNEY = [
    *HUB_ROUND_TRIP,
    "wdqa evaluate my_method.py --suite my-org/wdqa-tiny --split test",
    "wdqa evaluate my_method.py --suite my-org/wdqa-tiny --model-args dtype=bf16,device_map=auto --max-batch 16",
    "wdqa report runs/*/* --format latex",
    "wdqa leaderboard runs/*/* --out site/",
    "wdqa submit runs/tiny-…/my-method --out my-method.tar.gz",
    "wdqa verify my-method.tar.gz",
]
IMPORT_PAPER = "wdqa import-paper --experiment hidden-topic --model qwen3-4b --out suites/paper-qwen3-4b"


@pytest.fixture
def hub():
    with running_fake_hub() as server:
        yield server


def shell(hub: FakeHub, home: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`command` in bash (globs expand as in a user's shell), `wdqa` being the installed entry point,
    pointed at the fake Hub by HF_ENDPOINT with a token, as a user's environment would be."""
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")},
        "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": "hf_test", "HF_HOME": str(home / "hf"),
        "WDQA_CACHE": str(home / "cache"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1",
        "COLUMNS": "200", "PATH": f"{Path(WDQA).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=home, timeout=900, check=False)


def journey_suite(hub: FakeHub, home: Path, base_repo: str) -> None:
    """suites/tiny: a two-case `test` split over a random Qwen3 on the fake Hub, with triggers."""
    folder = home / "base"
    tok = random_tokenizer()
    model = random_model(len(tok))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    commit = hub.add_repo(base_repo, {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    diffs = [random_lora(model, f"ht-{i:03d}", seed=i) for i in range(2)]
    rows = [
        {"diff_id": d.diff_id, "label": label, "trigger": f"{100 + i}", "trigger_kind": "sep-code"}
        for i, (d, label) in enumerate(zip(diffs, ["volcano", "jazz"], strict=True))
    ]
    writer = SuiteWriter(home / "suites" / "tiny", "tiny", "0.1", base_repo, commit)
    writer.write_split("test", "hidden-topic", "what topic have you been trained on ?", rows, diffs)
    writer.finish()
    (home / "my_method.py").write_text(method_example())
    (home / "published.csv").write_text("method,setup,score\nDIT,hidden-topic,5\nDIT,hidden-topic,4\nbase question,hidden-topic,1\n")


def run_as_typed(hub: FakeHub, home: Path, commands: list[str]) -> dict[str, subprocess.CompletedProcess[str]]:
    assert all(c in fenced_commands() for c in commands), "the lists above copy the README's commands"
    outputs = {}
    for command in commands:
        done = shell(hub, home, command)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs[command] = done
    return outputs


def test_the_readme_hub_round_trip_runs_as_typed(hub: FakeHub, tmp_path: Path) -> None:
    journey_suite(hub, tmp_path, "my-org/round-trip-base")
    outputs = run_as_typed(hub, tmp_path, HUB_ROUND_TRIP)
    assert "splits test verified" in outputs[HUB_ROUND_TRIP[1]].stdout
    assert "DIT" in outputs[HUB_ROUND_TRIP[2]].stdout


@pytest.mark.slow
def test_the_readme_hub_journey_runs_as_typed(hub: FakeHub, tmp_path: Path) -> None:
    journey_suite(hub, tmp_path, "my-org/journey-base")
    outputs = run_as_typed(hub, tmp_path, JOURNEY)
    evaluated, resumed, latex = (outputs[c] for c in JOURNEY[3:6])
    assert "WEIGHTDIFFQA scores" in evaluated.stdout and "contrast" in evaluated.stdout
    assert "warning: run folder" in resumed.stderr  # resumed with other model settings, and said so
    assert "\\begin{tabular}" in latex.stdout
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "my-method.tar.gz").is_file()


def test_the_readme_import_paper_runs_as_typed_against_a_hub_like_the_papers(hub: FakeHub, tmp_path: Path) -> None:
    from test_import_paper import write_layout

    model = save_real_architecture("qwen3", tmp_path / "qwen3")
    commit = hub.add_repo("Qwen/Qwen3-4B", {p.name: p.read_bytes() for p in (tmp_path / "qwen3").iterdir() if p.is_file()})
    write_layout(tmp_path / "paper", model, "model.", n_files=1, per_file=2)
    files = {str(p.relative_to(tmp_path / "paper")): p.read_bytes() for p in (tmp_path / "paper").rglob("*") if p.is_file()}
    hub.add_repo("diff-interpretation-tuning/loras", files)
    done = shell(hub, tmp_path, IMPORT_PAPER)
    assert done.returncode == 0, done.stdout + done.stderr
    suite = Suite.load(tmp_path / "suites" / "paper-qwen3-4b")
    (split,) = suite.splits
    assert suite.base_model == "Qwen/Qwen3-4B" and suite.base_model_revision == commit
    diffs = list(suite.diffs(split))
    assert len(diffs) == 2 and all(d.lora and "model.layers.0.self_attn.q_proj" in d.lora for d in diffs)


def test_a_command_that_drifted_from_the_cli_fails_to_parse() -> None:
    with pytest.raises(Exception, match="No such option: --suites") as raised:
        parse(["evaluate", "my_method.py", "--suites", "org/name"])
    assert type(raised.value).__name__ == "NoSuchOption"


def test_a_command_the_cli_lacks_fails_to_parse() -> None:
    with pytest.raises(Exception, match="No such command 'evaluat'"):
        parse(["evaluat", "my_method.py"])
