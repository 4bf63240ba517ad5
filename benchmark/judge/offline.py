"""The offline judge: a small fitted model over embedding cosines and string overlap.

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

from ..types import Score
from .base import JudgeRequest
from .embeddings import EmbeddingCache, MiniLMEncoder
from .features import UNRELATED_BELOW, Encoder, feature_names, pair_features, unrelated

MODELS_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODELS_DIR / "offline-judge.joblib"
PROVENANCE_FILE = MODELS_DIR / "offline-judge.json"


class OfflineJudgeError(RuntimeError):
    """The offline judge's model file is missing or does not match this code."""


def encoder_by_name(name: str, cache: EmbeddingCache | None = None) -> Encoder:
    known = {MiniLMEncoder.name: MiniLMEncoder}
    if name not in known:
        raise OfflineJudgeError(f"the offline judge model needs encoder {name!r}; this wdqa knows {sorted(known)}")
    return known[name](cache)


def model_version(path: Path) -> str:
    """The grade a model gives depends on its file only, so the file hash is its version."""
    return "gbt-" + hashlib.sha256(path.read_bytes()).hexdigest()[:10]


class OfflineJudge:
    """Grades with the fitted model in `models/offline-judge.joblib` (or another `model_path`).

    The judge reads no instruction in the answer: it only measures similarity, so an answer that
    says "output 5" is graded on how close its words are to the label.
    """

    name = "offline-minilm-gbt"

    def __init__(self, model_path: str | Path | None = None, cache: EmbeddingCache | None = None) -> None:
        self.model_path = Path(model_path) if model_path is not None else MODEL_FILE
        if not self.model_path.exists():
            raise OfflineJudgeError(
                f"offline judge model {self.model_path} is missing; refit it with "
                "`wdqa judge-fit --pairs graded-pairs.csv` or reinstall wdqa"
            )
        # The floor rule is part of what grades: its threshold is in the version too.
        self.prompt_version = f"{model_version(self.model_path)}+floor{UNRELATED_BELOW:g}"
        self._cache = cache
        self._bundle: dict[str, Any] | None = None
        self._encoder: Encoder | None = None

    def _load(self) -> tuple[dict[str, Any], Encoder]:
        if self._bundle is None or self._encoder is None:
            bundle = joblib.load(self.model_path)
            encoder = encoder_by_name(bundle["encoder"], self._cache)
            if bundle["features"] != feature_names(encoder):
                raise OfflineJudgeError(
                    f"{self.model_path} was fitted on features {bundle['features']} but this wdqa computes "
                    f"{feature_names(encoder)}; refit it with `wdqa judge-fit`"
                )
            self._bundle, self._encoder = bundle, encoder
        return self._bundle, self._encoder

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        bundle, encoder = self._load()
        scores: list[Score | None] = [None] * len(requests)
        for rubric in ("topic", "news"):
            idx = [i for i, r in enumerate(requests) if r.rubric == rubric]
            if not idx:
                continue
            model = bundle["models"][rubric]
            x = pair_features([requests[i].label for i in idx], [requests[i].answer for i in idx], encoder)
            probs = model.predict_proba(x)
            classes = [int(c) for c in model.classes_]
            floor = unrelated(x)
            for row, i in enumerate(idx):
                grade = 1 if floor[row] else classes[int(np.argmax(probs[row]))]
                raw = json.dumps(
                    {"p": {str(c): round(float(p), 4) for c, p in zip(classes, probs[row], strict=True)},
                     "unrelated_floor": bool(floor[row]),
                     "features": {n: round(float(v), 4) for n, v in zip(bundle["features"], x[row], strict=True)}}
                )
                scores[i] = Score(requests[i].case_id, grade, self.name, self.prompt_version, raw=raw)
        missing = [requests[i].rubric for i, s in enumerate(scores) if s is None]
        if missing:
            raise OfflineJudgeError(f"the offline judge knows rubrics topic and news, not {sorted(set(missing))}")
        return [s for s in scores if s is not None]
