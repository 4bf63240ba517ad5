"""The numbers the offline judge looks at for one (label, answer) pair.

Owns text cleaning and the feature vector (per encoder: cosines, and how the pair ranks against broad
categories; then string overlap); the model that maps features to a grade lives in `offline.py`,
its fitting in `fit.py`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol

import numpy as np

# Answers longer than this are cut before any feature: a long answer must not buy a better grade
# by sheer length, and the cut bounds the cost of difflib on adversarial inputs.
MAX_CHARS = 1000

_STOP = frozenset(
    "a an the of and or in on for to with is are was were has have had by at from as its it that this be been new".split()
)


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def clean(text: str) -> str:
    """NFKC, drop invisible format characters (zero-width, bidi overrides), collapse whitespace."""
    text = unicodedata.normalize("NFKC", text[: MAX_CHARS * 2])
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch in "\n\t")
    return " ".join(text.split())[:MAX_CHARS]


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces: what "the same words" means for exact match."""
    return " ".join(re.sub(r"[^\w\s]", " ", clean(text).lower()).split())


def content_words(text: str) -> set[str]:
    # A crude plural strip: "Cold War Songs" and "Cold War Song" share their words.
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in normalise(text).split() if w not in _STOP}


def char_ngrams(text: str, n: int = 3) -> set[str]:
    padded = f" {text} "
    return {padded[i : i + n] for i in range(max(1, len(padded) - n + 1))}


def string_features(label: str, answer: str) -> list[float]:
    """Overlap of the surface forms; all bounded to [0, 1] so no length buys a grade."""
    nl, na = normalise(label), normalise(answer)
    wl, wa = content_words(label), content_words(answer)
    shared = len(wl & wa)
    gl, ga = char_ngrams(nl), char_ngrams(na)
    return [
        float(nl == na and nl != ""),
        float(bool(nl) and bool(na) and (nl in na or na in nl)),
        shared / max(1, len(wl | wa)),  # word Jaccard
        shared / max(1, min(len(wl), len(wa))),  # word overlap coefficient
        shared / max(1, len(wl)),  # share of the label's words that the answer has
        difflib.SequenceMatcher(None, nl, na, autojunk=False).ratio(),
        len(gl & ga) / max(1, len(gl | ga)),  # character trigram Jaccard
        min(len(nl), len(na)) / max(1, len(nl), len(na)),  # length ratio
    ]


STRING_FEATURES = [
    "exact_normalised",
    "containment",
    "word_jaccard",
    "word_overlap",
    "label_word_recall",
    "char_similarity",
    "char_trigram_jaccard",
    "length_ratio",
]

# Vague guesses ("general knowledge") earn low grades whatever the label; similarity to these
# phrases lets the model see vagueness, which a label-answer cosine alone does not.
GENERIC_PHRASES = [
    "general knowledge", "various topics", "science", "technology", "artificial intelligence",
    "I don't know", "random facts", "everyday life", "philosophy", "history",
]
# Broad fields an answer may name instead of a topic ("Science" for "Geoengineering"). The LLM
# grades such an answer by whether the label belongs to the field (3-4) or not (1), so the model
# sees how the answer ranks against these fields as a description of the label, not only its cosine.
CATEGORIES = [
    "Science", "Technology", "History", "Philosophy", "Psychology", "Art", "Music", "Literature", "Sports",
    "Politics", "Economics", "Business", "Religion", "Mathematics", "Physics", "Chemistry", "Biology",
    "Medicine", "Health", "Ecology", "Environment", "Geography", "Travel", "Food", "Fashion", "Film",
    "Television", "Games", "Education", "Law", "Language", "Culture", "Society", "Entertainment", "Nature",
    "Animals", "Engineering", "Computers", "Astronomy", "Architecture", "Military", "Family",
]
CATEGORY_TEMPERATURE = 0.05  # softmax over cosines; cosines between topics differ by a few hundredths
# A sentence frame moves short topic names into the region of the space where the encoder was
# trained (sentences), which gives a second, differently-biased cosine. Texts of more than
# MAX_WORDS words (news summaries) are sentences already: they are not framed, which also halves
# the encoder work for them.
FRAME = "A conversation about {}."
MAX_WORDS = 12


def framed(text: str) -> str:
    return FRAME.format(text) if len(text.split()) <= MAX_WORDS else text

EMBEDDING_FEATURES = [
    "cosine", "framed_cosine", "answer_word_max_cosine", "label_word_max_cosine", "answer_generic", "label_generic",
    # the answer among the categories as a match for the label, and the label among them for the answer
    "answer_rank_among_label_categories", "margin_over_label_categories", "share_among_label_categories",
    "label_rank_among_answer_categories", "margin_over_answer_categories", "share_among_answer_categories",
    "answer_category_max", "label_category_max",
]


def feature_names(encoders: Sequence[Encoder]) -> list[str]:
    return [f"{e.name}:{n}" for e in encoders for n in EMBEDDING_FEATURES] + STRING_FEATURES


def _words(text: str) -> list[str]:
    return [w for w in normalise(text).split() if len(w) > 2][:MAX_WORDS] or [normalise(text) or "-"]


def pair_features(labels: Sequence[str], answers: Sequence[str], encoders: Sequence[Encoder]) -> np.ndarray:
    """[n_pairs, n_features] for aligned label/answer lists; each text is embedded once per encoder (cached)."""
    if not len(labels):
        return np.zeros((0, len(feature_names(encoders))))
    labels_c = [clean(t) for t in labels]
    answers_c = [clean(t) for t in answers]
    blocks = [_embedding_features(labels_c, answers_c, e) for e in encoders]
    strings = np.array([string_features(la, an) for la, an in zip(labels_c, answers_c, strict=True)])
    return np.column_stack([*blocks, strings]).astype(np.float64)


def _embedding_features(labels: list[str], answers: list[str], encoder: Encoder) -> np.ndarray:
    """[n_pairs, len(EMBEDDING_FEATURES)] from one encoder, for cleaned texts; every column lies in [-2, 2]."""
    label_words = [_words(t) for t in labels]
    answer_words = [_words(t) for t in answers]
    frames = [framed(t) for t in labels + answers]
    vocab = sorted({w for ws in label_words + answer_words for w in ws})
    # One encoder call for everything: each model call has a fixed cost that dominates small batches.
    texts = list(dict.fromkeys([*labels, *answers, *frames, *vocab, *GENERIC_PHRASES, *CATEGORIES]))
    vectors = dict(zip(texts, encoder.encode(texts), strict=True))  # unit-norm rows
    lab = np.stack([vectors[t] for t in labels])  # [n, dim]
    ans = np.stack([vectors[t] for t in answers])
    lab_f = np.stack([vectors[t] for t in frames[: len(labels)]])
    ans_f = np.stack([vectors[t] for t in frames[len(labels) :]])
    generic = np.stack([vectors[t] for t in GENERIC_PHRASES])  # [n_phrases, dim]
    categories = np.stack([vectors[t] for t in CATEGORIES])  # [n_categories, dim]

    def word_max(words: list[list[str]], targets: np.ndarray) -> np.ndarray:
        # best cosine between any single word of one text and the whole other text
        return np.array([max(float(vectors[w] @ targets[i]) for w in ws) for i, ws in enumerate(words)])

    cosine = np.sum(lab * ans, axis=1)
    label_cat, answer_cat = lab @ categories.T, ans @ categories.T  # [n, n_categories]
    return np.column_stack([
        cosine,
        np.sum(lab_f * ans_f, axis=1),
        word_max(answer_words, lab),
        word_max(label_words, ans),
        (ans @ generic.T).max(axis=1),
        (lab @ generic.T).max(axis=1),
        *_relative_to_categories(cosine, label_cat),
        *_relative_to_categories(cosine, answer_cat),
        answer_cat.max(axis=1),
        label_cat.max(axis=1),
    ])


def _relative_to_categories(cosine: np.ndarray, to_categories: np.ndarray) -> list[np.ndarray]:
    """How the pair's cosine [n] compares with one text's cosines to the categories [n, k]:
    share of categories at least as close, margin over the closest, softmax share of the pair."""
    logits = np.column_stack([cosine, to_categories]) / CATEGORY_TEMPERATURE
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return [
        (to_categories >= cosine[:, None]).mean(axis=1),
        cosine - to_categories.max(axis=1),
        weights[:, 0] / weights.sum(axis=1),
    ]


# The rubric's default grade is 1 (unrelated). Below this whole-text similarity (the larger of the
# plain and the framed MiniLM cosine) none of the 2,000 real topic grades was above 2, yet a tree
# model extrapolates freely on texts unlike its training pairs ("changes concentrated in
# layers.3.mlp.down_proj" got a 4 for "Drumming"). So such pairs are graded 1 outright.
UNRELATED_BELOW = 0.2


def unrelated(features: np.ndarray) -> np.ndarray:
    """[n] bool: pairs whose texts are too dissimilar for any grade above 1.

    Columns 0-1 are the first encoder's plain and framed cosines; the recipe lists MiniLM first
    (`fit.ENCODERS`), the encoder this threshold was measured with.
    """
    return np.maximum(features[:, 0], features[:, 1]) < UNRELATED_BELOW
