"""The numbers the offline judge looks at for one (label, answer) pair.

Owns text cleaning and the feature vector (embedding cosines + string overlap); the model that
maps features to a grade lives in `offline.py`, its fitting in `fit.py`.
"""

from __future__ import annotations

import difflib
import math
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
        math.log1p(len(na)),
        math.log1p(len(nl)),
        float(len(wa)),
        float(len(wl)),
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
    "log_answer_chars",
    "log_label_chars",
    "answer_words",
    "label_words",
]


def feature_names(encoders: Sequence[Encoder]) -> list[str]:
    return [f"cosine_{e.name}" for e in encoders] + STRING_FEATURES


def pair_features(labels: Sequence[str], answers: Sequence[str], encoders: Sequence[Encoder]) -> np.ndarray:
    """[n_pairs, n_features] for aligned label/answer lists; each text is embedded once (cached)."""
    labels_c = [clean(t) for t in labels]
    answers_c = [clean(t) for t in answers]
    columns = []
    for encoder in encoders:
        vectors = encoder.encode(labels_c + answers_c)
        n = len(labels_c)
        columns.append(np.sum(vectors[:n] * vectors[n:], axis=1))  # unit vectors: dot = cosine
    strings = np.array([string_features(lab, ans) for lab, ans in zip(labels_c, answers_c, strict=True)])
    if not len(labels_c):
        return np.zeros((0, len(encoders) + len(STRING_FEATURES)))
    return np.column_stack([*columns, strings]).astype(np.float64)
