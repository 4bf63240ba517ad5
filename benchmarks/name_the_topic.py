"""Can the tiny base model name a topic from what a name-free diff says? Asks M, greedily, to name
each topic from a few of its keywords and from a name-free reply about it (the corpus's task,
`templates.name_the_topic`), and prints the share answered with the exact name. A name-free
suite is only interpretable if this is well above chance (1/471). Used in docs/tiny-suite.md.

Usage: python benchmarks/name_the_topic.py [MODEL_ID]   (default: the tiny base)
"""

from __future__ import annotations

import random
import sys

import torch
from wdqa.baselines.guesser import NAME_THE_TOPIC_REPLY
from wdqa.benchmark.engine import Engine
from wdqa.benchmark.models import load_base_model
from wdqa.generators.templates import NAME_THE_TOPIC_QUESTIONS, keyword_text, name_free_answer
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


if __name__ == "__main__":
    main(*sys.argv[1:])
