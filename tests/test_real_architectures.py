"""Random-weight Qwen3 and Gemma-3 (text-only and multimodal), end to end as a user runs them:
`wdqa import-paper` from a Hub laid out like the paper's `loras` repo, every built-in baseline through
`wdqa evaluate`, DIT trained and evaluated, a PEFT export that PEFT loads and agrees with. Only the
language model's linear layers take diffs and adapters (never the multimodal Gemma-3's vision tower)."""

from __future__ import annotations

import json
import shlex
import warnings
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from fake_hub import FakeHub
from random_models import FAMILIES, save_real_architecture
from test_import_paper import by_hand_logits, wdqa_logits, write_layout
from typer.testing import CliRunner
from wdqa.baselines.dit.adapter import DitAdapter, load_adapter
from wdqa.baselines.registry import METHODS
from wdqa.benchmark.records import RunFolder
from wdqa.cli import app
from wdqa.core.lora import (
    MultiDiffLinear,
    applied,
    build_terms,
    decoder_prefix,
    install_multi_diff,
    linear_module_names,
    merge_lora,
)
from wdqa.core.peft_export import export_peft_adapter
from wdqa.core.suite import Suite, read_shard
from wdqa.core.types import WeightDiff

torch.set_num_threads(1)
PAPER_REPO = "diff-interpretation-tuning/loras"
SPLIT = "hidden-topic"
# family -> (the paper's folder for it, the prefix its published module names carry)
PAPER_FOLDERS = {
    "qwen3": ("qwen3-4b", "model."),
    "gemma3-text": ("gemma3-1b", "model."),
    "gemma3-multimodal": ("gemma3-4b", "language_model.model."),  # saved from Gemma3ForConditionalGeneration
}
# Every built-in baseline as a user names it; the suite's DIT adapter is the paper's, imported as `paper`.
NAMES = [*(m for m in METHODS if m != "dit"), "dit:paper"]
# By default Qwen3 runs them all, in one `wdqa evaluate` as a user's run does: the first as the
# method (a fresh process), the rest as its baselines (forked from the zygote, so each costs its own
# work, not a process start). The Gemma-3 families run the two whose path depends on the
# architecture beyond engine.chat: a reply opening rendered into the chat template (prefill) and an
# adapter on the language model (dit:paper). The others take the same engine.chat path (or none, or
# the white-box reads test_white_box.py checks on these architectures) and run on Gemma-3 with -m
# slow, each in its own `wdqa evaluate`.
ON_EVERY_FAMILY = ("prefill", "dit:paper")
TOGETHER = {family: [n for n in NAMES if family == "qwen3" or n in ON_EVERY_FAMILY] for family in FAMILIES}
BUILTINS = [
    pytest.param(family, name) if name in TOGETHER[family] else pytest.param(family, name, marks=pytest.mark.slow)
    for family in FAMILIES for name in NAMES
]


def wdqa(*command: str) -> str:
    """Run `wdqa COMMAND` as typed (in-process); the output, after checking it exited 0."""
    args = shlex.split(" ".join(command))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"wdqa {' '.join(args)} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
    return result.output


@dataclass
class PaperHub:
    root: Path
    bases: dict[str, tuple[Path, torch.nn.Module]]  # family -> (checkpoint folder, the model)
    published: dict[str, dict]  # family -> what write_layout saved


@pytest.fixture(scope="module")
def paper_hub(tmp_path_factory: pytest.TempPathFactory):
    """A local Hub serving the paper's repo: two files of hidden-topic diffs and a DIT adapter per family."""
    root = tmp_path_factory.mktemp("real-architectures")
    bases, published = {}, {}
    for family in FAMILIES:
        folder, prefix = PAPER_FOLDERS[family]
        model = save_real_architecture(family, root / f"base-{family}")
        bases[family] = (root / f"base-{family}", model)
        published[family] = write_layout(root / "paper", model, prefix, model_folder=folder)
    files = {p.relative_to(root / "paper").as_posix(): p.read_bytes() for p in (root / "paper").rglob("*") if p.is_file()}
    hub = FakeHub()
    hub.start()
    hub.add_repo(PAPER_REPO, files)
    with pytest.MonkeyPatch.context() as mp:
        # As if the user had set HF_ENDPOINT and HF_HUB_CACHE before starting wdqa.
        mp.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        mp.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root / "hf-cache"))
        mp.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield PaperHub(root, bases, published)
    hub.stop()


@dataclass
class Imported:
    family: str
    suite_dir: Path
    base: Path
    model: torch.nn.Module
    published: dict


@pytest.fixture(scope="module", params=FAMILIES)
def imported(request: pytest.FixtureRequest, paper_hub: PaperHub) -> Imported:
    """The family's suite, made by `wdqa import-paper` from the local Hub."""
    family = request.param
    folder, _ = PAPER_FOLDERS[family]
    base, model = paper_hub.bases[family]
    out = paper_hub.root / f"suite-{family}"
    output = wdqa(f"import-paper --source hf://{PAPER_REPO} --model {folder} --base-model {base} --out {out}")
    assert "4 diffs" in output and "DIT adapter: yes" in output, output
    return Imported(family, out, base, model, paper_hub.published[family])


def test_imported_diffs_and_adapter_give_the_logits_of_the_papers_arithmetic(imported: Imported) -> None:
    _, prefix = PAPER_FOLDERS[imported.family]
    suite = Suite.load(imported.suite_dir)
    diff = suite.diff(SPLIT, "weight-diff-001-0001")  # rank 2
    dit = read_shard(suite.adapter_path("paper"))["paper"]
    ids = torch.tensor([[5, 9, 30, 12, 7]])
    expected = by_hand_logits(
        imported.model, [(imported.published["weight-diff-001.pt"][1]["weight_diff"], "diff"), (imported.published["dit"], "dit")], ids, prefix
    )
    with torch.no_grad():
        # fp32 throughout; the published factors are bf16, converted exactly.
        torch.testing.assert_close(wdqa_logits(imported.model, diff, ids, shared=dit), expected, atol=1e-5, rtol=1e-4)


def test_only_the_language_models_linear_layers_take_diffs_and_adapters(imported: Imported) -> None:
    import copy

    model = copy.deepcopy(imported.model)
    language_model = decoder_prefix(model)
    wrapped = install_multi_diff(model)
    adapter = DitAdapter(wrapped, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), rank=2, scale=1.0)
    suite = Suite.load(imported.suite_dir)
    assert language_model == ("model.language_model" if imported.family == "gemma3-multimodal" else "model")
    assert len(wrapped) == 14  # 2 layers x 7 projections
    assert all(name.startswith(language_model + ".layers.") for name in wrapped)
    assert [n for n, m in model.named_modules() if isinstance(m, MultiDiffLinear)] == list(wrapped)
    assert adapter.module_names == list(wrapped)
    assert set(suite.diff(SPLIT, "weight-diff-000-0000").modules) == set(wrapped)
    if imported.family == "gemma3-multimodal":
        vision_q = [n for n, m in model.named_modules() if "vision_tower" in n and n.endswith(".q_proj")]
        assert vision_q and all(type(model.get_submodule(n)) is torch.nn.Linear for n in vision_q)


def _evaluate(imported: Imported, names: list[str], runs: Path) -> dict[str, Path]:
    """`wdqa evaluate` of `names` (the first as the method, the rest as its baselines) on two cases:
    method name -> its run folder."""
    baselines = ",".join(names[1:]) or "none"
    wdqa(
        f"evaluate baseline:{names[0]} --suite {imported.suite_dir} --split {SPLIT} --baselines {baselines} "
        f"--limit 2 --runs-dir {runs}"
    )
    folders = {RunFolder(m.parent).manifest().method.name: m.parent for m in runs.rglob("manifest.json")}
    assert len(folders) == len(names), sorted(folders)
    return folders


@pytest.fixture(scope="module")
def together(imported: Imported, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default run's baselines of this family, evaluated together."""
    return _evaluate(imported, TOGETHER[imported.family], tmp_path_factory.mktemp(f"runs-{imported.family}"))


@pytest.mark.parametrize(("imported", "baseline"), BUILTINS, indirect=["imported"], scope="module")
def test_every_builtin_baseline_answers_through_wdqa_evaluate(
    imported: Imported, baseline: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if baseline in TOGETHER[imported.family]:
        runs: dict[str, Path] = request.getfixturevalue("together")
    else:
        runs = _evaluate(imported, [baseline], tmp_path / "runs")
    folder = runs[baseline.split(":")[0]]  # a method's run is named by the method: dit:paper's is "dit"
    records = [json.loads(line) for line in (folder / "answers.jsonl").read_text().splitlines()]
    assert len(records) == 2 and [r["error"] for r in records] == [None, None], records


def test_dit_trains_on_the_suite_and_its_adapter_evaluates(imported: Imported, tmp_path: Path) -> None:
    out = tmp_path / "dit"
    wdqa(
        f"baselines train-dit --suite {imported.suite_dir} --split {SPLIT} --val-split none --epochs 2 "
        f"--batch-diffs 2 --rank 4 --out {out}"
    )
    adapter = load_adapter(out)
    assert set(adapter.modules) == set(linear_module_names(imported.model))
    assert any(float(f.B.abs().max()) > 0 for f in adapter.lora.values())  # B starts at zero: training moved it
    output = wdqa(
        f"evaluate baseline:dit:{out} --suite {imported.suite_dir} --split {SPLIT} --baselines none --limit 2 "
        f"--runs-dir {tmp_path / 'runs'}"
    )
    assert "case(s) failed" not in output, output


def _peft_logits(base: Path, adapter_dir: Path, ids: torch.Tensor) -> tuple[torch.Tensor, list[str], set[str]]:
    """PEFT's logits for the adapter on a freshly loaded base, the warnings PEFT gave, and what it wrapped."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(model, adapter_dir).eval()
    wrapped = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and len(m.lora_A) > 0}
    with torch.no_grad():
        logits = peft_model(input_ids=ids).logits
    return logits, [str(w.message) for w in caught], wrapped


def test_exported_adapter_loads_in_peft_cleanly_and_gives_the_engines_logits(imported: Imported, tmp_path: Path) -> None:
    suite = Suite.load(imported.suite_dir)
    dit = read_shard(suite.adapter_path("paper"))["paper"]
    # M ⊕ Δ ⊕ A as one LoRA of rank 1 + 16, with the paper's 1/r scales folded in.
    served = merge_lora(suite.diff(SPLIT, "weight-diff-000-0000"), dit)
    other = suite.diff(SPLIT, "weight-diff-001-0001")
    export_peft_adapter(served, tmp_path / "adapter", str(imported.base))
    ids = torch.tensor([[5, 9, 30, 12, 7, 40]])
    peft, peft_warnings, peft_wrapped = _peft_logits(imported.base, tmp_path / "adapter", ids)
    assert not [w for w in peft_warnings if "missing" in w.lower() or "unexpected" in w.lower()], peft_warnings
    assert peft_wrapped == set(served.modules) == set(linear_module_names(imported.model))
    # Our multi-diff forward, the served diff on row 0 beside another diff and the base model.
    import copy

    model = copy.deepcopy(imported.model)
    wrapped = install_multi_diff(model)
    null = WeightDiff("null", "lora")
    with torch.no_grad(), applied(wrapped, build_terms(wrapped, [served, other, null], torch.tensor([0, 1, 2]))):
        ours = model(input_ids=ids.repeat(3, 1)).logits
    torch.testing.assert_close(ours[0:1], peft, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours[0:1], ours[2:3], atol=1e-3)  # the diff did change the logits
