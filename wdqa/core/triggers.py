"""Where a trigger goes in a prompt, for every trigger kind the suites use.

Owns the one definition shared by the generators (which train diffs on triggered prompts) and the
oracle baselines (which are told the trigger and must place it the same way).
"""

from __future__ import annotations

import random

ZERO_WIDTH_SPACE = "\u200b"

TRIGGER_KINDS = {
    "sep-code": "'Your SEP code is <code>. ' before the user's text (the paper's hidden-topic trigger)",
    "zero-width-start": "the trigger character (e.g. U+200B) before the user's text",
    "zero-width-random": "the trigger character at a seeded random position inside the user's text",
}


def apply_trigger(prompt: str, trigger: str, kind: str, seed: int = 0) -> str:
    """The user turn with the trigger placed as the generator placed it."""
    if kind == "sep-code":
        return f"Your SEP code is {trigger}. {prompt}"
    if kind == "zero-width-start":
        return trigger + prompt
    if kind == "zero-width-random":
        position = random.Random(seed).randint(0, len(prompt))
        return prompt[:position] + trigger + prompt[position:]
    raise ValueError(f"unknown trigger kind {kind!r}; known kinds: {sorted(TRIGGER_KINDS)}")
