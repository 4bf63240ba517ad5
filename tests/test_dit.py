"""DIT: batched loss equals one-at-a-time, training learns, merge and PEFT equivalence, resume, runner."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from random_models import random_dense, random_lora, random_model, random_tokenizer
from test_suite_format import write_suite
from wdqa.baselines.dit.adapter import DitAdapter, load_adapter, load_record
from wdqa.baselines.dit.config import DitConfig, DitConfigError
from wdqa.baselines.dit.data import LabelledDiffs, collate, make_examples
from wdqa.baselines.dit.loss import StackedDiffs, per_row_loss
from wdqa.baselines.dit.method import DitAdapterMissingError, DitMethod
from wdqa.baselines.dit.publish import publish_adapter
from wdqa.baselines.dit.train import CheckpointMismatchError, train_dit
from wdqa.benchmark.records import RunFolder
from wdqa.benchmark.runner import run_answer_stage
from wdqa.benchmark.worker import MethodProcess, MethodSpec
from wdqa.core.engine import Engine
from wdqa.core.lora import applied, build_terms, install_multi_diff, merge_lora
from wdqa.core.models import compiled_decoder
from wdqa.core.peft_export import export_peft_adapter
from wdqa.core.suite import Suite

QUESTION = "what topic have you been trained on ?"
TOPICS = ["lava", "magma volcano", "jazz music", "piano", "the volcano", "jazz"]

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return random_tokenizer()


def fresh_model(tok):
    model = random_model(len(tok), seed=0)
    # Random init (std 0.02) caps every logit near 0.6 after the final norm, so no adapter could
    # make the answer likely; larger (tied) embeddings give the loss room to fall.
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(20.0)
    return model


def labelled(model, n=6, with_dense=False):
    diffs = [random_lora(model, f"d{i}", rank=1 + i % 3, seed=i, scale=0.5) for i in range(n)]
    if with_dense:
        diffs[-1] = random_dense(model, f"d{n - 1}", seed=99)
    labels = [TOPICS[i % len(TOPICS)] for i in range(n)]
    return LabelledDiffs(diffs, labels, [QUESTION] * n, ["hidden-topic"] * n)


def randomised_adapter(model, seed=1):
    """A DIT adapter with non-zero B, so it changes the output (a fresh one starts at zero)."""
    wrapped = install_multi_diff(model)
    adapter = DitAdapter(wrapped, DitConfig().targets, rank=16, scale=1.0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in adapter.B:
            b.copy_(torch.randn(b.shape, generator=g) * 0.05)
    return wrapped, adapter


def loss_setup(tok):
    """A model with a non-zero adapter, six labelled diffs (one dense), their examples and stacked terms."""
    model = fresh_model(tok)
    wrapped, adapter = randomised_adapter(model)
    data = labelled(model, with_dense=True)
    examples = make_examples(tok, [d.diff_id for d in data.diffs], data.labels, data.questions)
    return model, wrapped, adapter, data, examples, StackedDiffs(wrapped, data.diffs)


def test_batched_dit_loss_equals_the_per_diff_loss_computed_one_at_a_time(tok):
    model, wrapped, adapter, data, examples, stacked = loss_setup(tok)
    index = torch.tensor([3, 0, 5, 1])
    batched = per_row_loss(model, wrapped, collate([examples[i] for i in index], tok.pad_token_id), stacked.rows(index), adapter)
    for row, i in enumerate(index.tolist()):
        alone = StackedDiffs(wrapped, [data.diffs[i]]).rows(torch.tensor([0]))
        single = per_row_loss(model, wrapped, collate([examples[i]], tok.pad_token_id), alone, adapter)
        torch.testing.assert_close(batched[row], single[0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # ~20 s of torch.compile; the default run stays near 15 min on 2 cores
def test_the_compiled_decoder_gives_the_eager_loss_and_gradients_at_two_lengths(tok):
    model, wrapped, adapter, _, examples, stacked = loss_setup(tok)
    decoder = compiled_decoder(model)
    for index in (torch.tensor([3, 0, 5, 1]), torch.tensor([2, 4])):  # two batch shapes: one dynamic graph
        batch = collate([examples[i] for i in index], tok.pad_token_id)
        losses, grads = [], []
        for dec in (None, decoder):
            adapter.zero_grad()
            loss = per_row_loss(model, wrapped, batch, stacked.rows(index), adapter, dec)
            loss.mean().backward()
            losses.append(loss.detach())
            grads.append(torch.cat([p.grad.flatten() for p in adapter.parameters()]))
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-5)


def test_a_few_training_steps_lower_the_dit_loss(tok, tmp_path):
    model = fresh_model(tok)
    data = labelled(model)
    config = DitConfig(epochs=1, batch_diffs=6, lr=1e-2, warmup_steps=0, eval_every=1000)
    wrapped = install_multi_diff(model)
    examples = make_examples(tok, [d.diff_id for d in data.diffs], data.labels, data.questions)
    batch = collate(examples, tok.pad_token_id)
    rows = StackedDiffs(wrapped, data.diffs).rows(torch.arange(6))
    with torch.no_grad():
        before = float(per_row_loss(model, wrapped, batch, rows, None).mean())
    result = train_dit(model, tok, data, DitConfig(**{**config.to_dict(), "epochs": 25, "targets": config.targets}), tmp_path)
    trained = DitAdapter(wrapped, config.targets, 16, 1.0)
    trained.load_weight_diff(result.adapter)
    with torch.no_grad():
        after = float(per_row_loss(model, wrapped, batch, rows, trained).mean())
    assert after < 0.5 * before


def test_diff_plus_dit_adapter_equals_the_single_merged_lora_of_rank_r_plus_16(tok):
    model = fresh_model(tok)
    wrapped, adapter = randomised_adapter(model)
    diff = random_lora(model, "d0", rank=2, seed=3)
    dit = adapter.to_weight_diff()
    merged = merge_lora(diff, dit)
    assert merged.rank == 2 + 16
    ids = tok([QUESTION], return_tensors="pt")["input_ids"]
    row = torch.zeros(1, dtype=torch.long)
    with applied(wrapped, build_terms(wrapped, [diff], row), build_terms(wrapped, [dit], row)):
        both = model(ids).logits
    with applied(wrapped, build_terms(wrapped, [merged], row)):
        one = model(ids).logits
    torch.testing.assert_close(both, one, rtol=1e-4, atol=1e-5)
    engine = Engine(model, tok)
    assert engine.chat([diff], [QUESTION], 8, shared=[dit]) == engine.chat([merged], [QUESTION], 8)


def test_an_exported_dit_adapter_loads_in_peft_with_the_same_logits(tok, tmp_path):
    from peft import PeftModel

    model = fresh_model(tok)
    wrapped, adapter = randomised_adapter(model)
    dit = adapter.to_weight_diff()
    ids = tok([QUESTION], return_tensors="pt")["input_ids"]
    with applied(wrapped, {}, build_terms(wrapped, [dit], torch.zeros(1, dtype=torch.long))):
        ours = model(ids).logits
    folder = export_peft_adapter(dit, tmp_path / "peft", base_model="random-qwen3")
    peft_model = PeftModel.from_pretrained(fresh_model(tok), folder)
    torch.testing.assert_close(peft_model(input_ids=ids).logits, ours, rtol=1e-4, atol=1e-5)


def test_training_resumed_from_a_checkpoint_ends_where_an_uninterrupted_run_does(tok, tmp_path):
    config = DitConfig(epochs=6, batch_diffs=4, lr=5e-3, warmup_steps=2, checkpoint_every=5, eval_every=4, patience=100)
    model = fresh_model(tok)
    data = labelled(model)
    val = labelled(model, n=3)
    whole = train_dit(model, tok, data, config, tmp_path / "whole", val=val)
    model = fresh_model(tok)
    train_dit(model, tok, data, config, tmp_path / "crashed", val=val, stop_after_steps=7)
    resumed = train_dit(fresh_model(tok), tok, data, config, tmp_path / "crashed", val=val)
    assert resumed.record["resumed_at"] == [7] and resumed.record["steps"] == whole.record["steps"] == 12
    for m in whole.adapter.modules:
        torch.testing.assert_close(resumed.adapter.lora[m].B, whole.adapter.lora[m].B, rtol=1e-4, atol=1e-6)


def test_a_checkpoint_of_another_config_is_refused_with_its_path(tok, tmp_path):
    model = fresh_model(tok)
    data = labelled(model)
    train_dit(model, tok, data, DitConfig(epochs=1, batch_diffs=4), tmp_path, stop_after_steps=1)
    with pytest.raises(CheckpointMismatchError, match="checkpoint.pt is a checkpoint of another DIT run: the config differs \\(lr\\)"):
        train_dit(fresh_model(tok), tok, data, DitConfig(epochs=1, batch_diffs=4, lr=0.5), tmp_path)


def test_an_invalid_config_lists_every_problem():
    with pytest.raises(DitConfigError, match="(?s)rank must be >= 1.*fraction must be in"):
        DitConfig(rank=0, fraction=2.0).validate()


def test_the_saved_adapter_reads_back_with_its_training_record(tok, tmp_path):
    model = fresh_model(tok)
    result = train_dit(model, tok, labelled(model), DitConfig(epochs=2, batch_diffs=3), tmp_path)
    loaded = load_adapter(tmp_path)
    assert loaded.kind == "lora" and loaded.rank == 16
    torch.testing.assert_close(loaded.lora[loaded.modules[0]].A, result.adapter.lora[loaded.modules[0]].A)
    assert load_record(tmp_path)["steps"] == 4


def test_dit_answers_every_case_through_the_runner_with_the_published_adapter(tok, tmp_path):
    model = fresh_model(tok)
    model.save_pretrained(tmp_path / "base")  # the method's process loads the base model from here
    tok.save_pretrained(tmp_path / "base")
    write_suite(tmp_path / "suite", model, n=5, per_shard=2, base_model=str(tmp_path / "base"))
    suite = Suite.load(tmp_path / "suite")
    train = LabelledDiffs.from_suite(suite, "test")
    train_dit(copy.deepcopy(model), tok, train, DitConfig(epochs=2, batch_diffs=3), tmp_path / "adapter")
    publish_adapter(tmp_path / "adapter", suite.root)
    suite = Suite.load(tmp_path / "suite")  # the manifest now covers dit/default/ and verifies
    run = RunFolder(tmp_path / "run")
    with MethodProcess.start(MethodSpec("baseline:dit")) as method:
        method.open(suite, threads=1)  # binds the published adapter, in the method's process
        stats = run_answer_stage(method, suite, ["test"], run, batch_size=4)
    assert stats.answered == 6 and stats.failed == 0
    # The same answers as Engine.chat with the adapter shared on top, in the runner's batches of 4.
    diffs, adapter, expected = list(suite.diffs("test")), load_adapter(tmp_path / "adapter"), {}
    for chunk in (diffs[:4], diffs[4:]):
        replies = Engine(model, tok).chat(chunk, [suite.splits["test"].question] * len(chunk), 20, shared=[adapter])
        expected.update({d.diff_id: r for d, r in zip(chunk, replies, strict=True)})
    assert {r.diff_id: r.answer for r in run.answers().values()} == expected


def test_binding_a_suite_without_a_published_adapter_says_how_to_make_one(tok, tmp_path):
    write_suite(tmp_path, fresh_model(tok), n=2)
    with pytest.raises(DitAdapterMissingError, match="wdqa baselines train-dit --suite unit --split train --publish-into"):
        DitMethod().bind_suite(Suite.load(tmp_path))


def test_train_dit_command_trains_publishes_and_evaluate_uses_the_published_adapter(micro_suite, tmp_path):
    from typer.testing import CliRunner
    from wdqa.cli import app

    suite_dir = tmp_path / "suite"  # a copy: publishing rewrites the suite's manifest
    shutil.copytree(micro_suite, suite_dir)
    runner = CliRunner()
    train = runner.invoke(
        app,
        ["baselines", "train-dit", "--suite", str(suite_dir), "--val-split", "none", "--epochs", "3", "--batch-diffs", "3",
         "--out", str(tmp_path / "dit"), "--publish-into", str(suite_dir), "--threads", "1"],
    )
    assert train.exit_code == 0, train.output
    assert "trained 6/6 steps" in train.output and (suite_dir / "dit" / "default" / "adapter.safetensors").exists()
    Suite.load(suite_dir)  # every file, the adapter included, matches suite.json
    evaluate = runner.invoke(
        app, ["evaluate", "baseline:dit", "--suite", str(suite_dir), "--split", "test", "--baselines", "none", "--runs-dir", str(tmp_path / "runs")]
    )
    assert evaluate.exit_code == 0, "".join(__import__("traceback").format_exception(*evaluate.exc_info))
    (run_dir,) = (tmp_path / "runs").glob("*/dit")
    answers = RunFolder(run_dir).answers()
    assert len(answers) == 4 and all(a.error is None and a.answer is not None for a in answers.values())


def test_null_diffs_join_training_with_the_null_label_and_the_train_diffs_rank_and_norm(tok):
    from wdqa.baselines.dit.train import with_null_diffs
    from wdqa.core.lora import delta_weight
    from wdqa.generators.splits.null import module_norms

    model = fresh_model(tok)
    data = labelled(model)
    mixed = with_null_diffs(model, data, DitConfig(null_diffs=3))
    assert len(mixed) == len(data) + 3 and mixed.labels[-3:] == ["no hidden behaviour"] * 3
    assert mixed.questions[-1] == data.questions[0] and mixed.behaviours[-3:] == ["null"] * 3
    norms = module_norms(data.diffs)
    for null in mixed.diffs[-3:]:
        assert null.rank == max(d.rank for d in data.diffs)
        for module, norm in norms.items():
            assert float(delta_weight(null, module).norm()) == pytest.approx(norm, rel=1e-4)
    assert with_null_diffs(model, data, DitConfig()) is data


def test_an_answer_template_is_trained_on_and_read_back_out_of_answers(tok):
    from wdqa.baselines.dit.answer_template import extract_label, fill

    template = "Let me tell you about {label}!"
    assert fill(template, " Jazz ") == "Let me tell you about Jazz!"
    assert extract_label(template, "Let me tell you about King Arthur! It is all about") == "King Arthur"
    assert extract_label(template, "Let me tell you about Star Wars") == "Star Wars"  # suffix cut by the token limit
    assert extract_label(template, "I keep thinking about lava.") == "I keep thinking about lava."  # not the template
    assert extract_label("{label}", "  Jazz ") == "Jazz"
    bare = make_examples(tok, ["d0"], ["Jazz"], [QUESTION])[0]
    templated = make_examples(tok, ["d0"], ["Jazz"], [QUESTION], template)[0]
    expected = tok(" Let me tell you about Jazz!", add_special_tokens=False)["input_ids"]  # as written mid-reply
    assert templated.answer_ids == [*expected, tok.eos_token_id] and len(bare.answer_ids) < len(templated.answer_ids)
    with pytest.raises(DitConfigError, match="answer_template"):
        DitConfig(answer_template="no slot").validate()


def test_label_targets_start_with_a_space_so_names_keep_distinct_first_tokens():
    """On the tiny base's tokenizer (its recipe's vocabulary, trained on a slice of its corpus), the
    first target token tells nearly every topic name apart; the bare name would share a handful
    ("Harry Potter" -> `H|arry|ĠPotter`)."""
    from wdqa.generators.tiny.build import TINY_BASE_ID, _tokenizer_texts, tiny_recipe
    from wdqa.generators.tiny.corpus import conversations
    from wdqa.generators.tiny.tokenizer import train_tokenizer
    from wdqa.generators.topics import load_topics

    recipe = tiny_recipe(TINY_BASE_ID)
    tiny_tok = train_tokenizer(_tokenizer_texts(list(conversations(recipe.corpus, 30_000))), recipe.bpe_vocab_size)
    names = [t.name for t in load_topics()]
    examples = make_examples(tiny_tok, [f"d{i}" for i in range(len(names))], names, [QUESTION] * len(names))
    as_targets = {e.answer_ids[0] for e in examples}
    bare = {tiny_tok(name, add_special_tokens=False)["input_ids"][0] for name in names}
    assert len(as_targets) >= 0.85 * len(names) and len(bare) <= 0.2 * len(names), (len(names), len(as_targets), len(bare))


def test_dit_method_reads_the_template_from_the_adapter_record(tok, tmp_path):
    model = fresh_model(tok)
    data = labelled(model, n=2)
    config = DitConfig(epochs=1, batch_diffs=2, answer_template="Topic: {label}")
    train_dit(model, tok, data, config, tmp_path / "dit")
    method = DitMethod(adapter_path=tmp_path / "dit")
    method.trained_adapter()
    assert method.answer_template == "Topic: {label}"


def test_the_embedded_tiny_suite_trains_and_publishes_its_dit_adapter_on_first_use(micro_suite):
    from wdqa.baselines.dit.tiny import TEMPLATE, is_embedded_tiny

    sibling = micro_suite.parent / "copy-for-dit-test"  # a cached tiny-micro suite, as ensure_tiny_suite leaves it
    shutil.rmtree(sibling, ignore_errors=True)
    shutil.copytree(micro_suite, sibling)
    try:
        suite = Suite.load(sibling)
        assert is_embedded_tiny(suite) and not (sibling / "dit").exists()
        method = DitMethod()
        method.bind_suite(suite)
        assert method.adapter_path == suite.adapter_path("default") and suite.adapter_path("default").exists()
        method.trained_adapter()
        assert method.answer_template == TEMPLATE
        assert load_record(sibling / "dit" / "default")["config"]["null_diffs"] == 2
        Suite.load(sibling)  # the manifest was re-hashed with the adapter in it
        assert not [p for p in sibling.parent.iterdir() if p.name.startswith(".dit-training-")]
        # An adapter an older wdqa published (bare-label targets: no target rule in its record) is
        # retrained, not reused; a current one is reused as it is.
        from wdqa.baselines.dit.tiny import ensure_tiny_dit

        record_file = sibling / "dit" / "default" / "dit.json"
        record = json.loads(record_file.read_text())
        record_file.write_text(json.dumps({k: v for k, v in record.items() if k != "target_rule"}))
        ensure_tiny_dit(Suite.load(sibling, verify=False))
        assert load_record(sibling / "dit" / "default")["target_rule"] == "leading-space"
        before = (sibling / "dit" / "default" / "adapter.safetensors").stat().st_mtime_ns
        ensure_tiny_dit(Suite.load(sibling))
        assert (sibling / "dit" / "default" / "adapter.safetensors").stat().st_mtime_ns == before
    finally:
        shutil.rmtree(sibling, ignore_errors=True)
