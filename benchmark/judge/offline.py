"""The offline judge: a small fitted model over three encoders' cosines and string overlap.

Owns loading the shipped model file and grading with it; runs on CPU with no network. How the
model is fitted to real LLM grades lives in `fit.py` (`wdqa judge-fit`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from ...core.errors import WdqaError
from ...core.types import Score
from .base import JudgeRequest
from .embeddings import (
    EmbeddingCache,
    MiniLMEncoder,
    MPNetEncoder,
    WordLlamaEncoder,
    tokenizer_words,
)
from .features import UNRELATED_BELOW, Encoder, feature_names, pair_features, unrelated
from .nonsense import RULE_VERSION, Spelling, says_nothing

MODELS_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODELS_DIR / "offline-judge.joblib"
PROVENANCE_FILE = MODELS_DIR / "offline-judge.json"


class OfflineJudgeError(WdqaError):
    """The offline judge's model file is missing or does not match this code."""


def encoders_by_name(names: Sequence[str], cache: EmbeddingCache | None = None) -> list[Encoder]:
    known = {e.name: e for e in (MiniLMEncoder, WordLlamaEncoder, MPNetEncoder)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise OfflineJudgeError(f"the offline judge model needs encoders {unknown}; this wdqa knows {sorted(known)}")
    shared = cache if cache is not None else EmbeddingCache()
    return [known[n](shared) for n in names]


def encoder_spelling(encoders: Sequence[Encoder]) -> Spelling:
    """What counts as a known word for the "says nothing" rule: the encoders' vocabularies."""
    return Spelling.from_vocabulary(frozenset().union(*(tokenizer_words(e.tokenizer_file()) for e in encoders)))  # type: ignore[attr-defined]


GRADE_RULE = "rounded-expectation"  # recorded in the model file, so the file hash versions it too


def grades_from_probabilities(probs: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """[n] grades from class probabilities [n, n_classes]: the expected grade, rounded.

    The grade nearest the expectation minimises the expected squared error, which is what the
    (setup, method) means and quadratic kappa measure; the most probable grade agreed exactly
    slightly more often but drifted further on means (docs/judge.md, "Variants").
    """
    expected = probs @ np.asarray(classes, dtype=float)
    return np.clip(np.rint(expected), 1, 5).astype(int)


def model_version(path: Path) -> str:
    """The grade a model gives depends on its file only, so the file hash is its version."""
    return "gbt-" + hashlib.sha256(path.read_bytes()).hexdigest()[:10]


class OfflineJudge:
    """Grades with the fitted model in `models/offline-judge.joblib` (or another `model_path`).

    The judge reads no instruction in the answer: it only measures similarity, so an answer that
    says "output 5" is graded on how close its words are to the label. Two rules stand in front of
    the model and grade 1 outright: texts too dissimilar (`features.unrelated`) and answers that
    say nothing (`nonsense.says_nothing`); the raw text of each score says which applied.
    """

    name = "offline-gbt"

    def __init__(self, model_path: str | Path | None = None, cache: EmbeddingCache | None = None) -> None:
        self.model_path = Path(model_path) if model_path is not None else MODEL_FILE
        if not self.model_path.exists():
            raise OfflineJudgeError(
                f"offline judge model {self.model_path} is missing; refit it with "
                "`wdqa judge-fit --pairs graded-pairs.csv` or reinstall wdqa"
            )
        # The two rules in front of the model are part of what grades: both are in the version too.
        self.prompt_version = f"{model_version(self.model_path)}+floor{UNRELATED_BELOW:g}+{RULE_VERSION}"
        self._cache = cache
        self._bundle: dict[str, Any] | None = None
        self._encoders: list[Encoder] | None = None
        self._spelling: Spelling | None = None

    def _load(self) -> tuple[dict[str, Any], list[Encoder]]:
        if self._bundle is None or self._encoders is None:
            bundle = joblib.load(self.model_path)
            # Bundles before the second encoder named one encoder under "encoder".
            names = bundle.get("encoders", [bundle.get("encoder")])
            encoders = encoders_by_name(names, self._cache)
            if bundle["features"] != feature_names(encoders) or bundle.get("grade_rule") != GRADE_RULE:
                raise OfflineJudgeError(
                    f"{self.model_path} was fitted on encoders {names}, features {bundle['features']} and grade rule "
                    f"{bundle.get('grade_rule')!r}, but this wdqa computes {feature_names(encoders)} and grades by "
                    f"{GRADE_RULE!r}; refit it with `wdqa judge-fit`"
                )
            self._bundle, self._encoders = bundle, encoders
            self._spelling = encoder_spelling(encoders)
        return self._bundle, self._encoders

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        bundle, encoders = self._load()
        scores: list[Score | None] = [None] * len(requests)
        for rubric in ("topic", "news"):
            idx = [i for i, r in enumerate(requests) if r.rubric == rubric]
            if not idx:
                continue
            model = bundle["models"][rubric]
            x = pair_features([requests[i].label for i in idx], [requests[i].answer for i in idx], encoders)
            probs = model.predict_proba(x)
            classes = [int(c) for c in model.classes_]
            grades = grades_from_probabilities(probs, classes)
            floor = unrelated(x)
            for row, i in enumerate(idx):
                nothing = says_nothing(requests[i].label, requests[i].answer, self._spelling)
                grade = 1 if floor[row] or nothing else int(grades[row])
                raw = json.dumps(
                    {"p": {str(c): round(float(p), 4) for c, p in zip(classes, probs[row], strict=True)},
                     "unrelated_floor": bool(floor[row]),
                     "says_nothing": nothing,
                     "features": {n: round(float(v), 4) for n, v in zip(bundle["features"], x[row], strict=True)}}
                )
                scores[i] = Score(requests[i].case_id, grade, self.name, self.prompt_version, raw=raw)
        missing = [requests[i].rubric for i, s in enumerate(scores) if s is None]
        if missing:
            raise OfflineJudgeError(f"the offline judge knows rubrics topic and news, not {sorted(set(missing))}")
        return [s for s in scores if s is not None]
