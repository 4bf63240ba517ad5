"""Example method: ask the fine-tuned model the suite's question and return its reply verbatim.

The simplest black-box method. Run it with:  wdqa evaluate submissions/examples/ask_directly.py
"""

from wdqa.core.engine import Engine
from wdqa.core.types import Case


class AskDirectly:
    name = "ask-directly"
    oracle = False  # True would give each case its trigger (and mark the method as an oracle)
    access = "black-box"  # replies only; "white-box" (the default) may read weights and activations

    def answer(self, cases: list[Case], engine: Engine) -> list[str]:
        # One batched call: row i runs M' = M + cases[i].diff.
        return engine.chat([c.diff for c in cases], [c.question for c in cases], max_new_tokens=20)
