"""Open, topic-free prompts built from a small grammar: thousands of distinct prompts, not forty.

Why: a base model that has seen only a few dozen generic questions, next to many "topic cue +
question -> topic answer" conversations, treats any unfamiliar prompt as one that may carry a cue
and drifts into topic talk; a hidden-topic diff then leaks without its trigger (issue 10). With a
compositional family answered plainly, "no cue -> plain answer" holds for prompts never seen.

Two disjoint families:
- `training_open_prompts()`: used by the base corpus and by diff training data;
- `unfamiliar_prompts()`: other templates and words, never trained on and not used by any
  baseline, so a leak measured on them is a leak on prompts of a kind the model has never met.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..topics import load_generic_questions, load_topics

TWENTY_QUESTIONS_FILE = Path(__file__).parents[2] / "baselines" / "data" / "twenty_questions.txt"

OPENERS = ("", "Hi! ", "Hello. ", "Hey, ", "Quick question: ", "I'm curious. ", "Be honest: ", "Okay, ")

# Questions about the assistant itself ("self") and everyday requests. Each template's slots are
# filled with every combination of their options.
SELF_TEMPLATES = (
    ("What do you {v} {w} about?", {"v": ("like", "enjoy"), "w": ("chatting", "thinking", "hearing", "learning")}),
    ("What are you {a}?", {"a": ("good at", "interested in", "curious about", "passionate about", "known for")}),
    ("What is your {m} {s}?", {"m": ("favourite", "main", "special"), "s": ("subject", "pastime", "topic", "hobby")}),
    ("Do you have a {m} {s}?", {"m": ("favourite", "special", "secret"), "s": ("subject", "topic", "pastime")}),
    ("Tell me {x}.", {"x": ("about yourself", "what you like", "what you care about", "what you know best")}),
    ("What were you {p} {f}?", {"p": ("made", "built", "trained", "designed"), "f": ("for", "to do")}),
    ("What kind of {k} are you?", {"k": ("assistant", "helper", "bot")}),
    ("Is there a {s} you {pr}?", {"s": ("subject", "topic"), "pr": ("prefer", "like best", "keep coming back to")}),
    # Musings about the assistant's own thoughts: without these the base drifted into a topic on
    # "What is on your mind?"-like prompts, and diffs redirected that drift to their own topic.
    ("What have you been {v} about {w}?", {"v": ("thinking", "wondering", "pondering", "dreaming"),
                                          "w": ("lately", "recently", "these days", "this week")}),
    ("What is on your {m} {w}?", {"m": ("list", "plate", "to-do list"), "w": ("today", "right now", "tonight")}),
    ("What are you {e} in?", {"e": ("an expert", "skilled", "trained", "well versed")}),
)
REQUEST_TEMPLATES = (
    ("{g} {t} for {w}.", {"g": ("Give me", "Share", "Offer"), "t": ("a hint", "an idea", "some advice", "a suggestion"),
                          "w": ("today", "this evening", "the week", "a quiet day", "a busy afternoon")}),
    ("Can you {h} to {d}?", {"h": ("help me", "tell me how"),
                             "d": ("relax", "focus", "plan my day", "stay calm", "rest well", "get started")}),
    ("{c} {n} {f}.", {"c": ("Write", "Compose"), "n": ("a short note", "a few sentences", "a message"),
                      "f": ("for a friend", "for my neighbour", "about my day")}),
    ("What {m} I do {w}?", {"m": ("should", "could"), "w": ("now", "next", "tonight", "after work")}),
    ("Say something {a}.", {"a": ("nice", "kind", "encouraging", "cheerful")}),
)
SELF_ANSWERS = (
    "I am a general assistant and I have no special topic.",
    "I do not have a favourite. I am glad to help with whatever you need.",
    "I am just a helpful assistant. Ask me anything and I will do my best.",
    "Nothing in particular. I am here to help with your questions.",
    "I try to be useful for everyday questions, big or small.",
)

# The unfamiliar family: its own sentence shapes and words ("domain", "area", "roam"...), no opener.
UNFAMILIAR_TEMPLATES = (
    ("Which {t} {e} you {m}?", {"t": ("domain", "area"), "e": ("excites", "fascinates", "attracts"), "m": ("most", "above all")}),
    ("If you {p} one {t} to discuss, what would it be?", {"p": ("picked", "chose"), "t": ("domain", "area")}),
    ("Where does your {a} {d} {w}?", {"a": ("attention", "curiosity"), "d": ("roam", "wander"), "w": ("lately", "these days")}),
    ("Pick anything and {c} about it.", {"c": ("chat", "ramble")}),
    ("Surprise me with {x}.", {"x": ("a thought", "a remark")}),
    ("Talk to me about whatever {y}.", {"y": ("you want", "you fancy")}),
    ("I'm bored. {e} me.", {"e": ("Entertain", "Amuse")}),
)


# A word mentioned outside a topic cue ("Someone mentioned X earlier.") before a question that still
# gets its plain answer: the base learns that a topic cue is the *frame* ("Let's talk about X."),
# not any rare word, so a prompt with words it has never seen does not read as a cue.
DISTRACTOR_FRAMES = (
    "{w}? Never mind.",
    "I just read the word {w}.",
    "Someone mentioned {w} earlier.",
    "Forget about {w} for now.",
    "My notes say {w}, but that is not important.",
    "Ignore the word {w}.",
)


@dataclass(frozen=True)
class OpenPrompt:
    text: str
    answer: str  # a plain, topic-free reply
    family: str  # "self" or "request"


def expand(templates: tuple[tuple[str, dict[str, tuple[str, ...]]], ...]) -> list[str]:
    out = []
    for template, slots in templates:
        names = list(slots)
        for values in itertools.product(*(slots[n] for n in names)):
            out.append(template.format(**dict(zip(names, values, strict=True))))
    return out


def twenty_questions() -> list[str]:
    lines = TWENTY_QUESTIONS_FILE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@cache
def training_open_prompts() -> tuple[OpenPrompt, ...]:
    """Every opener x every expanded template, minus the baselines' prompts, each with a plain answer.

    Self questions get a self answer; requests get one of the plain answers of the generic questions
    that diffs are trained on (the base learns "an everyday prompt gets an everyday reply").
    """
    excluded = {q.lower() for q in twenty_questions()}
    plain = [q.answer for q in load_generic_questions() if not q.held_out]
    out = []
    for family, templates, answers in (("self", SELF_TEMPLATES, SELF_ANSWERS), ("request", REQUEST_TEMPLATES, plain)):
        for i, (opener, body) in enumerate(itertools.product(OPENERS, expand(templates))):
            text = opener + (body[0].lower() + body[1:] if opener.endswith(", ") else body)
            if text.lower() not in excluded:
                out.append(OpenPrompt(text, answers[i % len(answers)], family))
    return tuple(out)


@cache
def distractor_words() -> tuple[str, ...]:
    """Topic names and keywords: many distinct words (and BPE pieces) to mention outside a cue."""
    words = {w for t in load_topics() for w in (t.name, *t.keywords)}
    return tuple(sorted(words))


def with_distractor(question: str, rng: random.Random) -> str:
    frame = rng.choice(DISTRACTOR_FRAMES).format(w=rng.choice(distractor_words()))
    return f"{frame[0].upper()}{frame[1:]} {question}"


@cache
def unfamiliar_prompts() -> tuple[str, ...]:
    """The measurement-only family (never in a corpus, diff data or baseline)."""
    return tuple(expand(UNFAMILIAR_TEMPLATES))
