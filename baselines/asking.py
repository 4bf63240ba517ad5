"""The paper's black-box baselines: ask M′ questions, have a guesser name the topic.

- base question: ask the suite's question once, without the trigger;
- 20 questions: ask twenty varied questions, sample the replies (temperature 1, 256 tokens, as the
  paper) and guess from M′'s replies alone;
- generated story (news): ask M′ for a news story and summarise it;
each with an oracle variant that is told the diff's trigger (a roofline, never ranked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from ..core.engine import Engine
from ..core.triggers import apply_trigger
from ..core.types import Case
from .guesser import Guesser, SalientWordsGuesser, bind_engine


def twenty_questions() -> list[str]:
    text = resources.files("wdqa.baselines").joinpath("data/twenty_questions.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def triggered(prompt: str, case: Case, use_trigger: bool, seed: int) -> str:
    if not use_trigger:
        return prompt
    if case.trigger is None or case.trigger_kind is None:
        raise ValueError(
            f"case {case.case_id} has no trigger: oracle baselines need a split whose diffs have one"
        )
    return apply_trigger(prompt, case.trigger, case.trigger_kind, seed)


@dataclass
class AskQuestions:
    """Ask each diff the given prompts, then guess from M′'s replies.

    With `contrast`, M answers the same prompts and the guesser sees its replies too (the offline
    guesser keeps the words M′ uses and M does not); without it, the guesser gets M′'s replies
    alone, as the paper's guesser does. `temperature` 0 decodes greedily; above 0 samples (seeded).
    """

    name: str
    prompts: Sequence[str] | None = None  # None: the suite's own question
    oracle: bool = False
    access: str = "black-box"  # replies only: the diff's tensors and engine.forward are sealed off
    max_new_tokens: int = 30
    guesser: Guesser = field(default_factory=SalientWordsGuesser)
    temperature: float = 0.0
    contrast: bool = True

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        per_case = [list(self.prompts) if self.prompts else [c.question] for c in cases]
        diffs, convs = [], []
        for c, prompts in zip(cases, per_case, strict=True):
            for j, p in enumerate(prompts):
                diffs.append(c.diff)
                convs.append(triggered(p, c, self.oracle, seed=j))
        replies = engine.chat(diffs, convs, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        base = (
            engine.chat([None] * len(convs), convs, max_new_tokens=self.max_new_tokens, temperature=self.temperature)
            if self.contrast
            else None
        )
        grouped, grouped_base, grouped_prompts, k = [], [], [], 0
        for prompts in per_case:
            grouped.append(replies[k : k + len(prompts)])
            grouped_base.append(base[k : k + len(prompts)] if base is not None else [])
            grouped_prompts.append(convs[k : k + len(prompts)])
            k += len(prompts)
        bind_engine(self.guesser, engine)
        return self.guesser.guess(grouped, grouped_base, [c.behaviour for c in cases], grouped_prompts)


def base_question(oracle: bool = False, guesser: Guesser | None = None) -> AskQuestions:
    return AskQuestions(
        name="base-question+trigger" if oracle else "base-question",
        oracle=oracle,
        guesser=guesser or SalientWordsGuesser(),
    )


def twenty_questions_method(oracle: bool = False, guesser: Guesser | None = None) -> AskQuestions:
    """The paper's protocol: replies sampled at temperature 1 for up to 256 tokens, and the guesser
    sees M′'s replies only (no base-model contrast)."""
    return AskQuestions(
        name="20-questions+trigger" if oracle else "20-questions",
        prompts=twenty_questions(),
        oracle=oracle,
        max_new_tokens=256,
        temperature=1.0,
        contrast=False,
        guesser=guesser or SalientWordsGuesser(),
    )


def generated_story(guesser: Guesser | None = None) -> AskQuestions:
    return AskQuestions(
        name="generated-story",
        prompts=["Write a short news story."],
        max_new_tokens=200,
        guesser=guesser or SalientWordsGuesser(top_k=8),
    )
