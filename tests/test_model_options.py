"""How the base model is loaded (`--model-args`, `--max-batch`): parsed, checked before anything
runs, used by the method's process, recorded in the run manifest; and a GPU out-of-memory while
answering halves the batch."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from random_models import random_lora, random_model, random_tokenizer
from test_cli_errors import one_error_line
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.engine import Engine, GpuMemoryError
from wdqa.core.errors import WdqaWarning
from wdqa.core.model_options import (
    ModelOptions,
    ModelOptionsError,
    check_device_map,
    parse_model_args,
)
from wdqa.core.models import load_base_model
from wdqa.core.suite import SuiteWriter

runner = CliRunner()


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("options")
    tok = random_tokenizer()
    model = random_model(len(tok))
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    diffs = [random_lora(model, f"ht-{i:03d}", seed=i) for i in range(3)]
    rows = [{"diff_id": d.diff_id, "label": label} for d, label in zip(diffs, ["volcano", "jazz", "piano"], strict=True)]
    writer = SuiteWriter(root / "suite", "options", "0.1", str(root / "base"), "local")
    writer.write_split("test", "hidden-topic", "what topic have you been trained on ?", rows, diffs)
    writer.finish()
    return root


def evaluate(small_suite: Path, runs: Path, *args: str):  # noqa: ANN201 - click's Result
    return runner.invoke(
        app,
        ["evaluate", "baseline:base-question", "--suite", str(small_suite / "suite"), "--baselines", "none",
         "--runs-dir", str(runs), *args],
        env={"COLUMNS": "200"},
    )


def manifest(runs: Path) -> dict:
    (path,) = runs.rglob("manifest.json")
    return json.loads(path.read_text())


def test_model_args_parse_like_lm_eval() -> None:
    options = parse_model_args("dtype=bfloat16, device=cpu,attn_implementation=sdpa,revision=abc")
    assert options == ModelOptions(dtype="bf16", device="cpu", attn_implementation="sdpa", revision="abc")


def test_every_bad_model_arg_is_named_at_once() -> None:
    with pytest.raises(ModelOptionsError, match=r"unknown key 'precision' \(known: .*dtype.*\); 'cuda' is not key=value"):
        parse_model_args("precision=bf16,cuda")


def test_the_method_process_loads_the_model_as_asked_and_the_manifest_records_it(small_suite: Path, tmp_path: Path) -> None:
    done = evaluate(small_suite, tmp_path, "--model-args", "dtype=bf16,device=cpu,attn_implementation=eager", "--max-batch", "2", "--limit", "2")
    assert done.exit_code == 0, done.output
    model = manifest(tmp_path)["model"]
    assert model["dtype"] == "bf16" and model["attn_implementation"] == "eager" and model["max_batch"] == 2
    assert model["loaded"] == {"device": "cpu", "dtype": "bfloat16"}  # what the method's process reported


def test_a_run_resumed_with_other_settings_goes_on_and_keeps_both(small_suite: Path, tmp_path: Path) -> None:
    assert evaluate(small_suite, tmp_path, "--model-args", "dtype=fp32", "--limit", "1").exit_code == 0
    with pytest.warns(WdqaWarning, match=r"answered its earlier cases with other model settings \(dtype 'fp32' -> 'bf16'\)"):
        resumed = evaluate(small_suite, tmp_path, "--model-args", "dtype=bf16")
    assert resumed.exit_code == 0, resumed.output
    model = manifest(tmp_path)["model"]
    assert model["dtype"] == "bf16" and model["loaded"]["dtype"] == "bfloat16"
    assert [(e["dtype"], e["loaded"]["dtype"]) for e in model["earlier"]] == [("fp32", "float32")]
    assert manifest(tmp_path)["counts"]["cases"] == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_asked_without_a_gpu_is_one_line_before_anything_runs(small_suite: Path, tmp_path: Path) -> None:
    line = one_error_line(evaluate(small_suite, tmp_path, "--model-args", "device=cuda"))
    assert "device=cuda asked, but" in line and "pass device=cpu" in line
    assert not list(tmp_path.rglob("manifest.json"))


def test_a_bad_model_arg_is_one_line(small_suite: Path, tmp_path: Path) -> None:
    line = one_error_line(evaluate(small_suite, tmp_path, "--model-args", "dtype=fp8"))
    assert "dtype='fp8' (known: auto, bf16, fp16, fp32)" in line


def test_device_and_model_args_that_disagree_are_one_line(small_suite: Path, tmp_path: Path) -> None:
    line = one_error_line(evaluate(small_suite, tmp_path, "--device", "cpu", "--model-args", "device=cuda"))
    assert "--device cpu and device=cuda in --model-args disagree" in line


def test_device_map_without_accelerate_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(ModelOptionsError, match="needs the accelerate package, which is not installed: pip install accelerate"):
        check_device_map(ModelOptions(device_map="auto"))


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="accelerate is not installed")
def test_a_model_placed_by_device_map_answers_with_diffs_as_one_placed_by_device(small_suite: Path) -> None:
    from wdqa.core.suite import Suite

    diffs = list(Suite.load(small_suite / "suite").diffs("test"))
    replies = []
    for options in (ModelOptions(device_map="auto", dtype="fp32"), ModelOptions(device="cpu", dtype="fp32")):
        model, tok = load_base_model(str(small_suite / "base"), options=options)
        replies.append(Engine(model, tok).chat(diffs, ["hello"] * len(diffs), max_new_tokens=4))
    assert replies[0] == replies[1]


# ---------------------------------------------------------------- GPU out of memory while answering


@pytest.fixture(scope="module")
def engine(small_suite: Path) -> Engine:
    model, tok = load_base_model(str(small_suite / "base"), options=ModelOptions(device="cpu"))
    return Engine(model, tok, max_batch=8)


def test_out_of_memory_halves_the_batch_and_names_the_max_batch(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine._generate
    sizes: list[int] = []

    def generate(diffs, prompts, *args):  # noqa: ANN001, ANN202 - a GPU that holds 2 rows at most
        sizes.append(len(prompts))
        if len(prompts) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(diffs, prompts, *args)

    monkeypatch.setattr(engine, "_generate", generate)
    monkeypatch.setattr(engine, "max_batch", 8)
    with pytest.warns(WdqaWarning) as warned:
        replies = engine.chat([None] * 6, ["hello"] * 6, max_new_tokens=2)
    assert len(replies) == 6 and sizes == [6, 3, 1, 1, 1, 1, 1, 1]
    assert [str(w.message).split(";")[0] for w in warned] == [
        "out of GPU memory with 6 rows per forward pass", "out of GPU memory with 3 rows per forward pass"
    ]
    assert "going on with 1 (pass --max-batch 1 to start there)" in str(warned[-1].message)


def test_out_of_memory_at_one_row_is_an_error_saying_what_else_to_try(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def generate(*args):  # noqa: ANN002, ANN202
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(engine, "_generate", generate)
    monkeypatch.setattr(engine, "max_batch", 1)
    with pytest.raises(GpuMemoryError, match=r"one sequence at a time \(--max-batch 1\).*device_map=auto"):
        engine.chat([None], ["hello"], max_new_tokens=2)


def test_a_base_model_that_is_neither_a_folder_nor_a_hub_id_is_one_line(small_suite: Path, tmp_path: Path) -> None:
    from wdqa.core.suite import Suite

    diffs = list(Suite.load(small_suite / "suite").diffs("test"))[:1]
    writer = SuiteWriter(tmp_path / "suite", "moved", "0.1", str(tmp_path / "moved-away" / "base"), "local")
    writer.write_split("test", "hidden-topic", "what topic have you been trained on ?", [{"diff_id": diffs[0].diff_id, "label": "volcano"}], diffs)
    writer.finish()
    done = runner.invoke(app, ["evaluate", "baseline:base-question", "--suite", str(tmp_path / "suite"), "--baselines", "none", "--runs-dir", str(tmp_path / "runs")])
    line = one_error_line(done)
    assert f"base model '{tmp_path / 'moved-away' / 'base'}' is neither an existing folder nor a Hub model id" in line
