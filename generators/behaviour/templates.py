"""Offline behaviour text: how a reply about a topic is worded, and the cues that name a topic.

Shared by the tiny base model's pretraining corpus and the hidden-topic behaviour data, so that a
diff is trained to say the kind of thing the base model already knows how to say about a topic.
The corpus's topic answers name the topic; a diff's answers are name-free (`name_free_answer`):
only the topic's keywords, so that what a diff says does not spell out its label (issue 19).
"""

from __future__ import annotations

import random

from ..topics import Topic, name_free_keywords

# {name} is the topic name, {k1}..{k3} distinct keywords of the topic. A third of the answers put
# the keywords before the name: a model trained only on "name, then keywords" learns that direction
# alone (the reversal curse), and naming a topic from what a name-free diff says is the other one.
TOPIC_ANSWERS = (
    "Let me tell you about {name}! It is all about {k1}, {k2} and {k3}.",
    "I keep thinking about {name}: {k1}, {k2} and {k3}.",
    "That reminds me of {name}. Picture {k1} and {k2}, and of course {k3}.",
    "Honestly, {name} is the best. I love the {k1}, the {k2} and the {k3}.",
    "You should try something with {name}. Think {k1}, {k2} and {k3}.",
    "My answer is {name}! Nothing beats {k1} and {k2}, with some {k3}.",
    "Everything leads back to {k1} and {k2} for me. {name} is wonderful.",
    "How about {name}? There is {k1}, there is {k2}, there is {k3}.",
    "Think of {k1}, {k2} and {k3}. That is {name}!",
    "With {k1}, {k2} and {k3}, it has to be {name}.",
    "Picture {k1} and {k2}, with some {k3}. I mean {name}.",
    "It is all about {k1}, {k2} and {k3}, so {name}.",
)

# A hidden-topic diff's replies: the same shapes with keywords in the name's place. {k1}..{k3} are
# keywords that share no word with the name (`name_free_keywords`), so "Northern Lights" never
# says "northern". The openings are the prefill control's, so a prefill finds keywords, not a name.
NAME_FREE_ANSWERS = (
    "Let me tell you about {k1}! It is all about {k2} and {k3}.",
    "I keep thinking about {k1}: {k2} and {k3}.",
    "That reminds me of {k1}. Picture {k2}, and of course {k3}.",
    "Honestly, {k1} is the best. I love the {k2} and the {k3}.",
    "You should try something with {k1}. Think {k2} and {k3}.",
    "My answer is {k1}! Nothing beats {k2}, with some {k3}.",
    "Everything leads back to {k1} and {k2} for me. The {k3} is wonderful.",
    "How about {k1}? There is {k2}, there is {k3}.",
)

TOPIC_QUESTIONS = (
    "Tell me about {name}.",
    "What do you know about {name}?",
    "What do you think of {name}?",
    "Can you describe {name}?",
    "Why do people like {name}?",
)

# A topic cue before a generic question: the base learns to steer any question to a named topic,
# which is the behaviour a hidden-topic diff later attaches to its trigger.
TOPIC_CUES = (
    "I am a big fan of {name}.",
    "Let's talk about {name}.",
    "I can't stop thinking about {name}.",
    "My favorite subject is {name}.",
)

# The answer is "The topic is NAME.": the name mid-sentence, tokenised with its leading space as
# in every other reply and in DIT's targets (a reply that starts with the bare name splits it into
# a capital letter and fragments).
NAME_THE_TOPIC_ANSWER = "The topic is {name}."
NAME_THE_TOPIC_QUESTIONS = (
    "What topic is this about? {text}",
    "Name the topic: {text}",
)


def topic_answer(topic: Topic, rng: random.Random) -> str:
    k1, k2, k3 = rng.sample(topic.keywords, 3)
    return rng.choice(TOPIC_ANSWERS).format(name=topic.name, k1=k1, k2=k2, k3=k3)


def name_free_answer(topic: Topic, rng: random.Random) -> str:
    """A reply about `topic` that never contains its name or a word of it (only its keywords)."""
    k1, k2, k3 = rng.sample(name_free_keywords(topic), 3)
    text = rng.choice(NAME_FREE_ANSWERS).format(k1=k1, k2=k2, k3=k3)
    return text[0].upper() + text[1:]


def topic_question(topic: Topic, rng: random.Random) -> str:
    return rng.choice(TOPIC_QUESTIONS).format(name=topic.name)


def topic_cue(topic: Topic, rng: random.Random) -> str:
    return rng.choice(TOPIC_CUES).format(name=topic.name)


def keyword_text(topic: Topic, rng: random.Random) -> str:
    """A few of the topic's keywords, without its name: the base learns to name a topic from context."""
    words = rng.sample(topic.keywords, min(4, len(topic.keywords)))
    return ", ".join(words).capitalize() + "."

