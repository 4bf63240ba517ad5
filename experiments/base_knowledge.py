"""Does a longer-pretrained tiny base know its topics better? (issue 19)

A name-free diff says only its topic's keywords, so any reader, DIT included, can name a held-out
topic only as well as the base names a topic from its keywords. This builds the default tiny
base's recipe with another step budget (the corpus grows with it: one epoch, as in the recipe) into
OUT and runs `name_the_topic.py`'s measurement on it, beside the default base's figures there.

Usage: python experiments/base_knowledge.py STEPS OUT [--threads N]
    python experiments/base_knowledge.py 1600 runs/base-1600 --threads 2
(The default 800-step base takes 15-18 min on two threads of a 2-core AMD EPYC; time grows with the
steps and the corpus with them.)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from name_the_topic import main as name_the_topic
from wdqa.generators.tiny.build import BUILD_INFO, TINY_BASE_ID, build_tiny_base, tiny_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", type=int)
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.out)
    recipe = replace(tiny_recipe(TINY_BASE_ID), steps=args.steps)
    if not (out / BUILD_INFO).exists():
        started = time.perf_counter()
        stats = build_tiny_base(recipe, out, threads=args.threads)
        print(f"built {args.steps} steps in {time.perf_counter() - started:.0f} s ({stats.tokens_per_s:,.0f} tokens/s, "
              f"final loss {stats.final_loss:.3f})", flush=True)
    info = json.loads((out / BUILD_INFO).read_text())
    print(f"base {out}: {info.get('corpus_tokens')} corpus tokens, pretrain {info.get('pretrain')}", flush=True)
    name_the_topic(str(out))


if __name__ == "__main__":
    main()
