"""DIT's answer template: the label placed in a sentence for training, and read back out of answers.

Owns both directions, so training targets and evaluated answers can never disagree on the format,
and the one rule for how a target is tokenised (`target_text`).
"""

from __future__ import annotations

import re

BARE = "{label}"


def fill(template: str, label: str) -> str:
    return template.replace("{label}", label.strip())


# Recorded with every trained adapter: an adapter trained on targets of another form (bare labels,
# before this rule) is not the recipe the docs measure, and the tiny suite's first-use adapter is retrained.
TARGET_RULE = "leading-space"


def target_text(template: str, label: str) -> str:
    """The text a model is trained to say, as it writes it mid-reply: one leading space.

    A byte-level BPE tokenises a word differently at the start of a text than after a space. A
    bare "Harry Potter" becomes `H|arry|ĠPotter` and 471 topic names share 33 first tokens; with
    the space they get 430 distinct first tokens, the ones the model already uses when it names a
    topic inside a sentence (docs/dit.md). Every label used as a training target goes through here.
    """
    return " " + fill(template, label).lstrip()


def extract_label(template: str, answer: str) -> str:
    """The label inside an answer that follows the template; the whole answer when it does not
    (a judge then sees what the model said, not nothing)."""
    if template == BARE:
        return answer.strip()
    prefix, _, suffix = template.partition("{label}")
    # The suffix may be cut off by the token limit: the label then runs to the end.
    end = f"(?:{re.escape(suffix.strip())}|$)" if suffix.strip() else "$"
    pattern = re.escape(prefix.strip()) + r"\s*(.+?)\s*" + end
    found = re.match(pattern, answer.strip(), flags=re.DOTALL)
    return found.group(1).strip() if found else answer.strip()
