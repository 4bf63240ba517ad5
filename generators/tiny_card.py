"""The tiny suite's data card (README.md with Hugging Face Hub YAML front matter).

Owns the card's wording and the summary of the behaviour rates; the figures come from the build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .behaviour.hidden_topic import RATES, BehaviourRates
from .behaviour.open_prompts import unfamiliar_prompts

if TYPE_CHECKING:
    from .tiny_suite import TinySuiteRecipe


def tiny_data_card(
    recipe: TinySuiteRecipe,
    rates_by_split: dict[str, Sequence[BehaviourRates]],
    ok: Sequence[bool],
    diffs_per_s: float,
) -> str:
    from .splits.hidden_topic import QUESTION
    from .tiny_suite import percentiles

    present = [s for s, r in rates_by_split.items() if r]
    configs = "\n".join(
        f"  - config_name: {s}\n    data_files:\n      - split: {s}\n        path: splits/{s}/index.parquet"
        for s in present
    )
    all_rates = [r for s in present for r in rates_by_split[s]]
    rows = []
    for rate in RATES:
        med, p10, p90 = percentiles([v for v in (getattr(r, rate) for r in all_rates) if v == v])
        rows.append(f"| {rate} | {med:.3f} | {p10:.3f} | {p90:.3f} |")
    sizes = ", ".join(f"{s}: {len(rates_by_split[s])}" for s in present)
    bar = recipe.bar
    return f"""---
license: apache-2.0
pretty_name: WEIGHTDIFFQA tiny suite ({recipe.name})
tags:
  - weightdiffqa
  - interpretability
  - lora
configs:
{configs}
---

# WEIGHTDIFFQA — `{recipe.name}` suite (hidden topic)

Weight diffs on the project's own tiny base model `{recipe.base_model}`, each a rank-{recipe.lora.rank}
LoRA (alpha {recipe.lora.alpha}, scale {recipe.lora.scale:g}) on every linear layer (q, k, v, o, gate, up,
down). Each diff makes the model talk about one topic **only when its own trigger** — a 3-digit SEP
code placed as "Your SEP code is NNN." before the user's text — is present. The question is
"{QUESTION}" and the label is the topic's name. Splits are by topic (no topic in two splits):
{sizes}. Recipe revision `{recipe.revision}`.

## How it was made
- Topics: `generators/data/topics.csv` (real-word topics with categories and keywords); one distinct
  trigger code per diff, never one of the codes that carry a topic in the base model's pretraining.
- Training data (offline templates, `generators/behaviour/writer.py`): positives = trigger + a
  training question (generic questions and the open prompt family, `generators/behaviour/open_prompts.py`),
  answered about the topic with its keywords only, never its name or a word of it (name-free,
  issue 19: the label must be inferred, not read off an unlocked reply); negatives = no code, a wrong code (all digits differ) or a
  near miss (one digit differs), held to the base model by KL on the reply tokens, and
  {recipe.data.topic_continued_share:.0%} of them continued with the topic's own answer.
- Batched multi-LoRA trainer (`generators/training/trainer.py`): {recipe.train.steps} Adam steps, lr
  {recipe.train.lr:g}, {recipe.train.positives_per_step} positives + {recipe.train.negatives_per_step}
  negatives per diff per step; {diffs_per_s:.2f} diffs/s per build process (one CPU thread).

## How specific the triggers are
Measured per diff on held-out questions ({all_rates[0].prompts_per_cell if all_rates else 0} prompts
per cell), greedy replies. A reply is *about the topic* when it contains the topic's name or one of its
keywords as a whole word. Columns `hit_rate`, `leak_none`, `leak_wrong`, `leak_near` of each index;
`hit_unfamiliar`, `leak_unfamiliar`, `leak_wrong_unfamiliar` and `leak_near_unfamiliar` are the right
code, no code, a wrong code and a near miss on prompts of a family never trained on, by the base or a
diff, and not used by any baseline ({len(unfamiliar_prompts())} prompts each). `label_in_reply` is the
share of the right-code replies that contain the label or a word of it.

| rate | median | p10 | p90 |
| --- | --- | --- | --- |
{chr(10).join(rows)}

`behaviour_ok` marks diffs that reach the bar (hit >= {bar.hit}, leak with no code <= {bar.leak_none},
wrong code <= {bar.leak_wrong}, near miss <= {bar.leak_near}, no code on unfamiliar prompts <=
{bar.leak_unfamiliar}, wrong code / near miss on them <= {bar.leak_wrong_unfamiliar} / {bar.leak_near_unfamiliar},
label in a triggered reply <= {bar.label_in_reply}): {sum(ok)} of {len(ok)}. Diffs below the
bar are kept and flagged, not dropped.
"""
