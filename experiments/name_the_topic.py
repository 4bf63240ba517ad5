"""Can the tiny base model name a topic from what a name-free diff says? Asks M, greedily, to name
each topic from a few of its keywords and from a name-free reply about it (the corpus's task,
`templates.NAME_THE_TOPIC_QUESTIONS`), and prints the share answered with the exact name, then
ranks every topic name by likelihood as the answer for 40 topics. A name-free
suite is only interpretable if this is well above chance (1/471). Used in docs/tiny-suite.md.

Usage: python experiments/name_the_topic.py [MODEL_ID]   (default: the tiny base)
"""

from __future__ import annotations

import random
import statistics
import sys

import torch
from wdqa.baselines.guesser import NAME_THE_TOPIC_REPLY
from wdqa.core.engine import Engine
from wdqa.core.models import load_base_model
from wdqa.generators.behaviour.templates import (
    NAME_THE_TOPIC_ANSWER,
    NAME_THE_TOPIC_QUESTIONS,
    keyword_text,
    name_free_answer,
)
from wdqa.generators.tiny.build import TINY_BASE_ID
from wdqa.generators.topics import load_topics


def main(model_id: str = TINY_BASE_ID) -> None:
    torch.set_num_threads(1)
    model, tokenizer = load_base_model(model_id)
    engine = Engine(model, tokenizer, max_batch=256)
    topics = list(load_topics())
    rng = random.Random("name-the-topic-benchmark")  # not the corpus's seed: other keyword draws
    for form, text in (("keywords", keyword_text), ("name-free reply", name_free_answer)):
        prompts = [rng.choice(NAME_THE_TOPIC_QUESTIONS).format(text=text(t, rng)) for t in topics]
        replies = engine.chat([None] * len(topics), prompts, max_new_tokens=12)
        names = [(m.group(1) if (m := NAME_THE_TOPIC_REPLY.match(r.splitlines()[0] if r.strip() else "")) else r)
                 for r in replies]
        exact = sum(n.strip().lower() == t.name.lower() for n, t in zip(names, topics, strict=True))
        print(f"{model_id}: name the topic from {form}: exact {exact}/{len(topics)} ({exact / len(topics):.2f})")
        for p, r in list(zip(prompts, replies, strict=True))[:3]:
            print(f"  {p!r} -> {r!r}")
    ranks = name_ranks(model, tokenizer, topics, random.Random(3), n=40)
    print(f"rank of the right name among all {len(topics)} by likelihood, {len(ranks)} topics from keywords: "
          f"mean {statistics.mean(ranks):.0f}, median {statistics.median(ranks):.0f}, top-1 {sum(r == 1 for r in ranks)}"
          f" (chance: mean {(len(topics) + 1) / 2:.0f})")


@torch.no_grad()
def name_ranks(model, tokenizer, topics: list, rng: random.Random, n: int) -> list[int]:  # noqa: ANN001
    """For `n` topics: the rank of its name among all names by log-likelihood in M's reply to
    "Name the topic: <keywords>", in the corpus's answer form ("The topic is NAME.")."""
    names = [t.name for t in topics]
    opening, closing = NAME_THE_TOPIC_ANSWER.split(" {name}")
    name_ids = [tokenizer(f" {name}{closing}", add_special_tokens=False)["input_ids"] for name in names]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ranks = []
    for topic in rng.sample(topics, n):
        question = "Name the topic: " + keyword_text(topic, rng)
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                               add_generation_prompt=True) + opening
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        rows = [p_ids + c + [end] for c in name_ids]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)  # [names, width]
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        logp = model(ids).logits.log_softmax(-1)  # [names, width, vocab]
        scores = []
        for i, r in enumerate(rows):
            positions = torch.arange(len(p_ids) - 1, len(r) - 1)
            scores.append(logp[i, positions, torch.tensor(r[len(p_ids):])].sum().item())
        right = scores[names.index(topic.name)]
        ranks.append(1 + sum(s > right for s in scores))
    return ranks


if __name__ == "__main__":
    main(*sys.argv[1:])
