"""Static SVG figures for the site: score distributions, rank generalisation, data scaling, score
against the tokens a method ran per case.

Owns drawing only (matplotlib, Agg backend, no display); which numbers to draw is decided by
`site.py`. Output is deterministic (fixed hash salt, no date) so rebuilt sites diff cleanly.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # the site is built on headless machines; never open a window

import matplotlib.pyplot as plt  # noqa: E402

# Score colours from "unrelated" (red) to "same concept" (green); the site's CSS uses the same.
SCORE_COLOURS = ("#d7301f", "#fc8d59", "#fdd49e", "#a6d96a", "#1a9641")


@dataclass(frozen=True)
class Point:
    x: float
    mean: float
    ci_low: float
    ci_high: float


def _to_svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "wdqa", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def score_distribution_svg(bars: Sequence[tuple[str, dict[str, float]]], title: str) -> str:
    """One horizontal stacked bar per (label, share of each score 1..5)."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(bars) + 1.2))
    labels = [label for label, _ in bars]
    left = [0.0] * len(bars)
    for k, colour in zip(("1", "2", "3", "4", "5"), SCORE_COLOURS, strict=True):
        widths = [100 * dist.get(k, 0.0) for _, dist in bars]
        ax.barh(
            labels,
            widths,
            left=left,
            color=colour,
            label=f"score {k}",
            edgecolor="white",
            linewidth=0.5,
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of cases (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(
        ncol=5,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25 if len(bars) < 4 else -0.12),
    )
    return _to_svg(fig)


def _lines_svg(series: Mapping[str, Sequence[Point]], xlabel: str, title: str, log2_x: bool) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, points in sorted(series.items()):
        pts = sorted(points, key=lambda p: p.x)
        xs = [p.x for p in pts]
        ax.errorbar(
            xs,
            [p.mean for p in pts],
            yerr=[[p.mean - p.ci_low for p in pts], [p.ci_high - p.mean for p in pts]],
            marker="o",
            capsize=3,
            label=name,
        )
    if log2_x:
        ax.set_xscale("log", base=2)
    ax.set_ylim(1, 5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean judge score (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _to_svg(fig)


def rank_generalisation_svg(series: Mapping[str, Sequence[Point]], title: str) -> str:
    """Mean score per LoRA rank of the explained diff, one line per method."""
    return _lines_svg(series, "LoRA rank of the weight diff", title, log2_x=True)


def data_scaling_svg(series: Mapping[str, Sequence[Point]], title: str) -> str:
    """Mean score against the share of training diffs a learned method saw."""
    return _lines_svg(series, "share of training diffs", title, log2_x=True)


def score_vs_tokens_svg(points: Mapping[str, Point], title: str) -> str:
    """One point per method: its mean score (95% CI) against the tokens it ran through M and M′
    per case (forward and generated), on a log scale that is linear below 10 tokens, so a method
    that runs no tokens (it reads weights only) shows at 0: what a score cost."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, p in sorted(points.items()):
        ax.errorbar([p.x], [p.mean], yerr=[[p.mean - p.ci_low], [p.ci_high - p.mean]], marker="o", capsize=3, label=name)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_ylim(1, 5)
    ax.set_xlabel("tokens run through M and M′ per case (log above 10)")
    ax.set_ylabel("mean judge score (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _to_svg(fig)
