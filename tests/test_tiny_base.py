"""The tiny base model: single-token codes, the chat template, the cached deterministic build."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer
from wdqa.generators.cache import build_once
from wdqa.generators.tiny.build import (
    BYTE_IDENTICAL_THREADS,
    TINY_MICRO_ID,
    build_info,
    build_tiny_base,
    ensure_tiny_base,
    tiny_recipe,
)


def test_every_code_from_000_to_999_is_one_token(micro_base: Path) -> None:
    tok = AutoTokenizer.from_pretrained(micro_base)
    for code in (f"{i:03d}" for i in range(1000)):
        ids = tok(f"Your SEP code is {code}. Hi", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(code) in ids, code


def test_chat_template_renders_qwen3_turns_and_accepts_enable_thinking(micro_base: Path) -> None:
    tok = AutoTokenizer.from_pretrained(micro_base)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert text == "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None


def test_micro_base_loads_with_auto_classes_and_generates(micro_base: Path) -> None:
    tok = AutoTokenizer.from_pretrained(micro_base)
    model = AutoModelForCausalLM.from_pretrained(micro_base)
    enc = tok(["<|im_start|>user\nTell me about Jazz.<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    assert build_info(micro_base)["revision"] == tiny_recipe(TINY_MICRO_ID).revision


def test_second_call_reuses_the_cached_build(micro_base: Path) -> None:
    assert ensure_tiny_base(TINY_MICRO_ID) == micro_base


def test_the_base_is_the_same_bytes_at_any_thread_count(micro_base: Path, tmp_path: Path) -> None:
    # A build uses up to 2 threads where it has the cores; the published base's bytes must not depend on it.
    recipe = tiny_recipe(TINY_MICRO_ID)
    built_at = build_info(micro_base)["threads"]
    assert built_at in BYTE_IDENTICAL_THREADS
    for threads in (t for t in BYTE_IDENTICAL_THREADS if t != built_at):  # the fixture was built at one of them
        build_tiny_base(recipe, tmp_path / str(threads), threads=threads)
        assert (tmp_path / str(threads) / "model.safetensors").read_bytes() == (micro_base / "model.safetensors").read_bytes()
        assert build_info(tmp_path / str(threads))["threads"] == threads


def test_changing_the_recipe_changes_the_revision() -> None:
    recipe = tiny_recipe(TINY_MICRO_ID)
    assert dataclasses.replace(recipe, steps=recipe.steps + 1).revision != recipe.revision


def test_unknown_tiny_model_is_answered_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="wdqa/tiny-qwen3-micro"):
        ensure_tiny_base("wdqa/tiny-nope")


def test_a_revision_this_wdqa_does_not_build_is_refused() -> None:
    with pytest.raises(ValueError, match="Regenerate the suite"):
        ensure_tiny_base(TINY_MICRO_ID, expected_revision="0000")


def test_an_interrupted_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def failing_build(tmp: Path) -> None:
        (tmp / "half-written").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(tmp_path / "model", failing_build, "done.json")
    assert list(tmp_path.iterdir()) == []


def test_the_corpus_shows_every_invisible_character_of_the_ood_split_in_ordinary_prompts() -> None:
    # An unseen character keeps the embedding every unseen byte drifts to; a diff cannot key on it.
    from itertools import islice

    from wdqa.generators.splits.ood_trigger import (
        TRAINING_DISTRACTORS,
        TRIGGER_CHARS,
        UNSEEN_DISTRACTOR,
    )
    from wdqa.generators.tiny.corpus import INVISIBLE_CHARS, conversations

    ood = {*TRIGGER_CHARS, *TRAINING_DISTRACTORS, UNSEEN_DISTRACTOR}
    assert ood <= set(INVISIBLE_CHARS)
    users = [c[0]["content"] for c in islice(conversations(tiny_recipe(TINY_MICRO_ID).corpus, 4000), 4000)]
    assert ood <= {ch for u in users for ch in u}


def test_the_corpus_teaches_naming_a_topic_from_its_keywords_not_only_the_keywords_of_a_name() -> None:
    # The reversal curse: a model that only ever reads "name, then keywords" cannot name a topic
    # from keywords, which is what interpreting a name-free diff asks of it (issue 19).
    from itertools import islice

    from wdqa.generators.behaviour.templates import NAME_THE_TOPIC_ANSWER
    from wdqa.generators.tiny.corpus import conversations
    from wdqa.generators.topics import load_topics

    topics = list(load_topics())
    keyword_first = name_first = named = 0
    for user, reply in ((c[0]["content"], c[1]["content"]) for c in islice(conversations(tiny_recipe(TINY_MICRO_ID).corpus, 3000), 3000)):
        for topic in topics:
            at = reply.find(topic.name)
            if at < 0:
                continue
            words = [reply.find(k) for k in topic.keywords if k in reply]
            if words and at > max(words):
                keyword_first += 1
            elif words and at < min(words):
                name_first += 1
            if reply == NAME_THE_TOPIC_ANSWER.format(name=topic.name):
                named += 1
                assert any(k in user.lower() for k in topic.keywords)
    assert keyword_first > 0.3 * (keyword_first + name_first), (keyword_first, name_first)
    assert named > 0.08 * 3000


def test_a_named_topic_is_tokenised_with_its_leading_space_as_in_every_other_reply(micro_base: Path) -> None:
    # The name-the-topic answer must hold the name's tokens exactly as DIT's target " {label}" has
    # them: a name that opens a reply splits into a capital letter and fragments (issue 19).
    from wdqa.generators.behaviour.templates import NAME_THE_TOPIC_ANSWER
    from wdqa.generators.topics import load_topics

    tokenizer = AutoTokenizer.from_pretrained(micro_base)
    for topic in list(load_topics())[:20]:
        reply = tokenizer(NAME_THE_TOPIC_ANSWER.format(name=topic.name), add_special_tokens=False)["input_ids"]
        name = tokenizer(f" {topic.name}", add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(name[0]).startswith("Ġ")
        assert any(reply[i : i + len(name)] == name for i in range(len(reply))), topic.name
