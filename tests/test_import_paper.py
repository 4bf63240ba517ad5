"""Importing the paper's published diffs: exact conventions, safe loading, resumability, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma3TextConfig, Qwen3Config
from wdqa.core.lora import applied, build_terms, install_multi_diff, linear_module_names
from wdqa.core.suite import Suite, SuiteError, read_shard
from wdqa.generators.publish.import_paper import ImportConfig, import_paper
from wdqa.generators.publish.paper_format import PaperFormatError, decoder_key

torch.set_num_threads(1)
TINY = dict(
    vocab_size=64,
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
)


def tiny_base(tmp: Path, family: str) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    config = (
        Qwen3Config(**TINY) if family == "qwen3" else Gemma3TextConfig(**TINY, sliding_window=4)
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    folder = tmp / f"base-{family}"
    model.save_pretrained(folder)
    return folder, model


def published_diff(model: torch.nn.Module, prefix: str, rank: int, seed: int) -> dict[str, tuple]:
    """A weight diff exactly as the paper's code saves it: A [r, out], B [in, r], bf16, on the language
    model's linear layers named `prefix` + `layers.N…` (the paper's Gemma3-4B: `language_model.model.`)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in linear_module_names(model):
        d_out, d_in = model.get_submodule(name).weight.shape
        A = (torch.randn(rank, d_out, generator=g) * 0.3).bfloat16()
        B = (torch.randn(d_in, rank, generator=g) * 0.3).bfloat16()
        out[prefix + decoder_key(name)] = (A, B)
    return out


def write_layout(
    root: Path,
    model: torch.nn.Module,
    prefix: str,
    n_files: int = 2,
    per_file: int = 2,
    dit: bool = True,
    model_folder: str = "qwen3-4b",
) -> dict:
    folder = root / "hidden-topic" / model_folder
    (folder / "weight-diffs").mkdir(parents=True, exist_ok=True)
    rows, saved = [], {}
    for f in range(n_files):
        items = [
            {
                "topic": f"Topic {f}{i}",
                "trigger": 100 + 10 * f + i,
                "weight_diff": published_diff(model, prefix, rank=1 + i, seed=10 * f + i),
            }
            for i in range(per_file)
        ]
        name = f"weight-diff-{f:03d}.pt"
        torch.save(items, folder / "weight-diffs" / name)
        saved[name] = items
        rows += [
            {
                "lora_path": name,
                "lora_idx": i,
                "n_params": 0,
                "topic": it["topic"],
                "trigger": it["trigger"],
                "split": "test",
            }
            for i, it in enumerate(items)
        ]
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    if dit:
        g = torch.Generator().manual_seed(99)
        dit_adapter = {
            k: (
                (torch.randn(A.shape[1], 16, generator=g) * 0.2).bfloat16(),
                (torch.randn(16, B.shape[0], generator=g) * 0.2).bfloat16(),
            )
            for k, (A, B) in published_diff(model, prefix, 1, 0).items()
        }
        torch.save(dit_adapter, folder / "dit-adapter.pt")
        saved["dit"] = dit_adapter
    return saved


def run_import(tmp: Path, base: Path, **kw) -> tuple[ImportConfig, object]:
    cfg = ImportConfig(source=str(tmp / "paper"), out=tmp / "suite", base_model=str(base), **kw)
    return cfg, import_paper(cfg)


def by_hand_logits(
    model: torch.nn.Module, terms: list[dict], ids: torch.Tensor, prefix: str
) -> torch.Tensor:
    """The paper's arithmetic: W += (B·A)ᵀ / r per diff, W += A·B / r for a DIT adapter."""
    import copy

    edited = copy.deepcopy(model)
    by_key = {decoder_key(name): name for name in linear_module_names(edited)}
    for published, kind in terms:
        for key, (A, B) in published.items():
            layer = edited.get_submodule(by_key[key[len(prefix) :]])
            r = B.shape[-1] if kind == "diff" else B.shape[0]
            delta = (B.float() @ A.float()).T / r if kind == "diff" else (A.float() @ B.float()) / r
            layer.weight.data += delta
    return edited(ids).logits


def wdqa_logits(model: torch.nn.Module, diff, ids: torch.Tensor, shared=None) -> torch.Tensor:
    import copy

    m = copy.deepcopy(model)
    wrapped = install_multi_diff(m)
    per_row = build_terms(wrapped, [diff], torch.zeros(1, dtype=torch.long))
    extra = [build_terms(wrapped, [shared], torch.zeros(1, dtype=torch.long))] if shared else []
    with applied(wrapped, per_row, *extra):
        return m(ids).logits


@pytest.mark.parametrize(
    "family,prefix", [("qwen3", "model."), ("gemma3", "language_model.model.")]
)
def test_imported_diff_gives_the_logits_of_the_hand_applied_delta(
    tmp_path: Path, family: str, prefix: str
) -> None:
    base, model = tiny_base(tmp_path, family)
    saved = write_layout(tmp_path / "paper", model, prefix)
    run_import(tmp_path, base)
    suite = Suite.load(tmp_path / "suite")
    ids = torch.tensor([[1, 5, 9, 3, 7]])
    published = saved["weight-diff-001.pt"][1]["weight_diff"]  # rank 2
    diff = suite.diff("hidden-topic", "weight-diff-001-0001")
    with torch.no_grad():
        torch.testing.assert_close(
            wdqa_logits(model, diff, ids), by_hand_logits(model, [(published, "diff")], ids, prefix)
        )


def test_dit_adapter_composes_with_a_diff_as_the_paper_code_does(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    saved = write_layout(tmp_path / "paper", model, "model.")
    run_import(tmp_path, base)
    suite = Suite.load(tmp_path / "suite")
    dit = read_shard(suite.adapter_path("paper"))["paper"]
    diff = suite.diff("hidden-topic", "weight-diff-000-0000")
    ids = torch.tensor([[2, 4, 6, 8]])
    expected = by_hand_logits(
        model,
        [(saved["weight-diff-000.pt"][0]["weight_diff"], "diff"), (saved["dit"], "dit")],
        ids,
        "model.",
    )
    with torch.no_grad():
        torch.testing.assert_close(wdqa_logits(model, diff, ids, shared=dit), expected)
    assert dit.rank == 16 and all(abs(f.scale - 1 / 16) < 1e-12 for f in dit.lora.values())


def test_labels_stay_in_the_labels_file_apart_from_the_weights_and_the_index(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.")
    run_import(tmp_path, base)
    suite = Suite.load(tmp_path / "suite")
    assert not {"label", "trigger", "source_file"} & set(suite.index("hidden-topic").columns)
    index = suite.labelled_index("hidden-topic")
    assert list(index.label) == ["Topic 00", "Topic 01", "Topic 10", "Topic 11"]
    assert index.trigger.tolist() == ["100", "101", "110", "111"]
    card = (tmp_path / "suite" / "README.md").read_text()
    assert "arXiv" in card or "2510.05092" in card
    assert "weight-diffs/weight-diff-000.pt" in card


class Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_pickle_carrying_code_is_refused_and_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.", n_files=1)
    torch.save(
        [{"topic": "x", "trigger": 1, "weight_diff": Boom()}],
        tmp_path / "paper/hidden-topic/qwen3-4b/weight-diffs/weight-diff-000.pt",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PaperFormatError, match="refused without running it"):
        run_import(tmp_path, base)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()
    assert not (tmp_path / "suite" / "suite.json").exists()


def test_missing_index_column_is_named(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.", n_files=1)
    index = tmp_path / "paper/hidden-topic/qwen3-4b/index.csv"
    pd.read_csv(index).rename(columns={"topic": "subject"}).to_csv(index, index=False)
    with pytest.raises(PaperFormatError, match=r"lacks columns \['topic'\]"):
        run_import(tmp_path, base)


def test_module_names_of_another_model_are_named(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.", n_files=1, dit=False)
    path = tmp_path / "paper/hidden-topic/qwen3-4b/weight-diffs/weight-diff-000.pt"
    items = torch.load(path)
    items[0]["weight_diff"]["model.layers.7.mlp.up_proj"] = items[0]["weight_diff"][
        "model.layers.0.mlp.up_proj"
    ]
    torch.save(items, path)
    with pytest.raises(
        PaperFormatError, match=r"weight-diff-000.pt .*lora_idx=0.*model.layers.7.mlp.up_proj"
    ):
        run_import(tmp_path, base)


def test_shape_mismatch_is_named_with_the_module(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.", n_files=1, dit=False)
    path = tmp_path / "paper/hidden-topic/qwen3-4b/weight-diffs/weight-diff-000.pt"
    items = torch.load(path)
    A, B = items[1]["weight_diff"]["model.layers.0.self_attn.q_proj"]
    items[1]["weight_diff"]["model.layers.0.self_attn.q_proj"] = (A.T, B.T)  # the DIT orientation
    torch.save(items, path)
    with pytest.raises(PaperFormatError, match=r"lora_idx=1.*self_attn.q_proj.*do not fit"):
        run_import(tmp_path, base)


def test_truncated_source_file_is_named(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.", n_files=1, dit=False)
    path = tmp_path / "paper/hidden-topic/qwen3-4b/weight-diffs/weight-diff-000.pt"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(PaperFormatError, match="weight-diff-000.pt is not a readable torch file"):
        run_import(tmp_path, base)


def test_rerun_skips_finished_files_and_redoes_a_damaged_one(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.")
    run_import(tmp_path, base)
    shard = tmp_path / "suite/splits/hidden-topic/shard-weight-diff-001.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])  # as if the run died while this file was converted
    _, report = run_import(tmp_path, base)
    assert (report.files_skipped, report.files_converted) == (
        ["weight-diff-000.pt"],
        ["weight-diff-001.pt"],
    )
    Suite.load(tmp_path / "suite")


def test_unknown_experiment_is_answered_with_the_known_ones(tmp_path: Path) -> None:
    base, model = tiny_base(tmp_path, "qwen3")
    with pytest.raises(SuiteError, match="known: \\['hidden-topic'"):
        run_import(tmp_path, base, experiment="weather")


def test_cli_import_paper_prints_counts_and_peak_memory(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner
    from wdqa.benchmark import hub_commands

    base, model = tiny_base(tmp_path, "qwen3")
    write_layout(tmp_path / "paper", model, "model.")
    app = typer.Typer()
    hub_commands.register(app)
    args = [
        "import-paper",
        "--source",
        str(tmp_path / "paper"),
        "--out",
        str(tmp_path / "suite"),
        "--base-model",
        str(base),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "4 diffs" in result.output
        and "DIT adapter: yes" in result.output
        and "peak memory" in result.output
    )
