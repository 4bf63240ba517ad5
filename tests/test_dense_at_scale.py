"""Dense (full fine-tune) diffs at scale: rows grouped by diff, one matmul per distinct diff, no
per-row [d_out, d_in] copy; outputs equal the merged-weight model; `wdqa bench dense` runs."""

from __future__ import annotations

import copy

import pytest
import torch
from random_models import random_dense, random_lora, random_model
from typer.testing import CliRunner
from wdqa.core.lora import (
    DiffError,
    MultiDiffLinear,
    RowDense,
    applied,
    build_terms,
    delta_weight,
    install_multi_diff,
)
from wdqa.core.types import WeightDiff

torch.set_num_threads(1)
VOCAB = 64


def merged_logits(model: torch.nn.Module, diff: WeightDiff | None, ids: torch.Tensor) -> torch.Tensor:
    """Reference: a copy of the model with ΔW added to its weights (the base model for None)."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for name in diff.modules if diff is not None else []:
            ref.get_submodule(name).weight += delta_weight(diff, name)
        return ref(ids).logits


def test_a_batch_mixing_dense_lora_and_base_rows_equals_each_rows_merged_model() -> None:
    model = random_model(VOCAB)
    partial = random_dense(model, "partial", seed=4)  # dense on the MLPs only: no delta on attention
    partial = WeightDiff("partial", "full", dense={n: t for n, t in partial.dense.items() if ".mlp." in n})
    diffs = [random_dense(model, "d0", seed=1), random_dense(model, "d1", seed=2), partial, random_lora(model, "l0", rank=2, seed=5), random_lora(model, "l1", rank=1, seed=6)]
    null = WeightDiff("null", "lora")
    # Each dense diff on several rows, not adjacent, among LoRA and base rows.
    row_task = torch.tensor([0, 3, 1, 5, 0, 2, 4, 1, 5, 0])
    ids = torch.randint(0, VOCAB, (len(row_task), 7), generator=torch.Generator().manual_seed(0))
    table = [*diffs, None]
    expected = torch.cat([merged_logits(model, table[t], ids[b : b + 1]) for b, t in enumerate(row_task.tolist())])
    wrapped = install_multi_diff(model)
    with torch.no_grad(), applied(wrapped, build_terms(wrapped, [*diffs, null], row_task)):
        got = model(ids).logits
    # fp32: W·x + ΔW·x against (W + ΔW)·x differ only by rounding.
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_grouped_rows_give_each_dense_delta_the_gradient_of_its_own_rows() -> None:
    # The dense trainer's case: one stacked [tasks, d_out, d_in] parameter, rows pick a task.
    g = torch.Generator().manual_seed(0)
    layer = MultiDiffLinear(torch.nn.Linear(16, 12, bias=False))
    delta = torch.nn.Parameter(torch.randn(3, 12, 16, generator=g) * 0.1)
    x = torch.randn(5, 4, 16, generator=g)
    row_task = torch.tensor([2, 0, 2, 1, 0])
    layer.terms = [RowDense(delta, row_task)]
    layer(x).square().sum().backward()
    got = delta.grad.clone()
    delta.grad = None
    # Reference: the old per-row gather, [batch, d_out, d_in].
    y = layer.base(x) + torch.bmm(x, delta.index_select(0, row_task).transpose(1, 2))
    y.square().sum().backward()
    torch.testing.assert_close(got, delta.grad, atol=1e-5, rtol=1e-5)


def peak_allocated_bytes(fn) -> int:  # noqa: ANN001 - a callable
    """Peak CPU bytes allocated by torch while `fn` runs, from the profiler's allocator events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def test_a_forward_with_dense_diffs_allocates_activations_not_copies_of_the_deltas() -> None:
    d, batch, seq, tasks = 512, 16, 2, 4
    delta_bytes = d * d * 4  # one fp32 ΔW: 1 MiB
    g = torch.Generator().manual_seed(0)
    layer = MultiDiffLinear(torch.nn.Linear(d, d, bias=False))
    deltas = [torch.randn(d, d, generator=g) * 0.01 for _ in range(tasks)]
    row_task = torch.arange(batch) % tasks
    x = torch.randn(batch, seq, d, generator=g)
    layer.terms = [RowDense(deltas, row_task)]
    with torch.no_grad():
        grouped = peak_allocated_bytes(lambda: layer(x))
        # The same forward the old way, to show the measure sees such a copy: [batch, d, d], 16 MiB.
        stacked = torch.stack(deltas)
        gathered = peak_allocated_bytes(lambda: torch.bmm(x, stacked.index_select(0, row_task).transpose(1, 2)))
    assert gathered >= batch * delta_bytes
    activations = batch * seq * d * 4  # 64 KiB per [batch, seq, d] tensor
    assert grouped <= 8 * activations < delta_bytes, (grouped, gathered)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_build_terms_keeps_the_diffs_own_dense_tensors(dtype: torch.dtype) -> None:
    # Deltas already in the model's dtype and device: the term holds the diff's tensors themselves,
    # not a stacked or cast copy of them.
    model = random_model(VOCAB).to(dtype)
    diffs = [random_dense(model, f"d{i}", seed=1 + i) for i in range(2)]
    diffs = [WeightDiff(d.diff_id, "full", dense={n: t.to(dtype) for n, t in d.dense.items()}) for d in diffs]
    wrapped = install_multi_diff(model)
    terms = build_terms(wrapped, diffs, torch.tensor([1, 0]))
    name = next(iter(wrapped))
    (term,) = terms[name]
    assert [delta.data_ptr() for delta, _ in sorted(term.groups, key=lambda g: int(g[1][0]))] == [
        diffs[1].dense[name].data_ptr(),
        diffs[0].dense[name].data_ptr(),
    ]


def test_a_dense_delta_of_the_wrong_shape_is_refused_naming_diff_and_module() -> None:
    model = random_model(VOCAB)
    other = random_dense(random_model(VOCAB, hidden=48), "wide")
    with pytest.raises(DiffError, match="wide: model.layers.0.self_attn.q_proj dense delta has shape"):
        build_terms(install_multi_diff(model), [other], torch.tensor([0]))


def test_wdqa_bench_dense_prints_time_flops_and_memory_both_ways() -> None:
    import typer
    from wdqa.benchmark import bench_commands, dense_bench_command

    app = typer.Typer()
    bench_commands.register(app)
    dense_bench_command.register(app)
    result = CliRunner().invoke(
        app, ["bench", "dense", "--shape", "tiny", "--n", "2", "--prompts-per-diff", "2", "--prompt-tokens", "4", "--max-new-tokens", "3", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    for text in ("batched: one matmul per distinct diff", "merge each diff into a copy", "% of matmul peak", "peak memory", "greedy answers identical both ways: 4/4"):
        assert text in result.output, result.output


@pytest.mark.parametrize("bad", [["--shape", "70b"], ["--dtype", "int3"]])
def test_bench_dense_refuses_an_unknown_shape_or_dtype_with_the_known_ones(bad: list[str]) -> None:
    import typer
    from wdqa.benchmark import bench_commands, dense_bench_command

    app = typer.Typer()
    bench_commands.register(app)
    dense_bench_command.register(app)
    result = CliRunner().invoke(app, ["bench", "dense", *bad])
    assert result.exit_code == 2 and "known:" in result.output, result.output


def test_the_engine_gives_the_vocabulary_projection_a_contiguous_input() -> None:
    # A strided [batch, 1, d] input makes torch's CPU bf16 matmul copy the [vocab, d] weight per row.
    from random_models import random_tokenizer
    from wdqa.core.engine import Engine

    tok = random_tokenizer()
    model = random_model(len(tok))
    engine = Engine(model, tok)
    seen: list[bool] = []
    model.get_output_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous()))
    engine.chat([None, None, None], ["tell me about lava", "what topic", "jazz music piano the"], max_new_tokens=3)
    assert seen and all(seen)
