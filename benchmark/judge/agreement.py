"""How closely two sets of 1-5 grades agree, the way judge papers report it.

Owns the metrics only (exact, within-1, Spearman, quadratic kappa, per-group means); reading
pairs or runs and printing tables belong to the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score


@dataclass(frozen=True)
class Agreement:
    n: int
    exact: float
    within_1: float
    spearman: float
    kappa: float  # quadratic-weighted Cohen's kappa
    mean_reference: float
    mean_other: float


@dataclass(frozen=True)
class GroupMean:
    group: str
    n: int
    mean_reference: float
    mean_other: float

    @property
    def error(self) -> float:
        return abs(self.mean_other - self.mean_reference)


def agreement(reference: Sequence[int] | np.ndarray[Any, Any], other: Sequence[int] | np.ndarray[Any, Any]) -> Agreement:
    """Compare two aligned grade lists (pairs where either is missing must be dropped first)."""
    a = np.asarray(reference, dtype=int)
    b = np.asarray(other, dtype=int)
    if a.shape != b.shape:
        raise ValueError(f"grade lists differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        nan = float("nan")
        return Agreement(0, nan, nan, nan, nan, nan, nan)
    constant = len(set(a.tolist())) < 2 or len(set(b.tolist())) < 2
    rho = float("nan") if constant else float(spearmanr(a, b).statistic)
    kappa = (
        float(np.all(a == b)) if constant else float(cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights="quadratic"))
    )
    return Agreement(
        n=len(a),
        exact=float(np.mean(a == b)),
        within_1=float(np.mean(np.abs(a - b) <= 1)),
        spearman=rho,
        kappa=kappa,
        mean_reference=float(a.mean()),
        mean_other=float(b.mean()),
    )


def group_means(
    groups: Sequence[str], reference: Sequence[int] | np.ndarray[Any, Any], other: Sequence[int] | np.ndarray[Any, Any]
) -> list[GroupMean]:
    """Mean grade per group (e.g. per (setup, method)) from both judges, sorted by group."""
    out = []
    g = np.asarray(groups, dtype=object)
    a = np.asarray(reference, dtype=float)
    b = np.asarray(other, dtype=float)
    for name in sorted(set(g.tolist())):
        m = g == name
        out.append(GroupMean(str(name), int(m.sum()), float(a[m].mean()), float(b[m].mean())))
    return out
