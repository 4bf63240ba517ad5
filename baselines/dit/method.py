"""DIT as one `Method` like any submission: greedy answers of M ⊕ Δ ⊕ A to the suite's question.

Owns loading a trained adapter (a file, a folder, or the suite's published `dit/<name>/`) and
answering through the batched `Engine.chat` with the adapter as a shared term. M ⊕ Δ ⊕ A is one
LoRA of rank r_Δ + r_A (`merge_lora`), which is how a multi-LoRA server would serve it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...core.engine import Engine
from ...core.errors import WdqaError
from ...core.suite import Suite
from ...core.types import Case, WeightDiff
from .adapter import load_adapter, load_record
from .answer_template import BARE, extract_label
from .tiny import ensure_tiny_dit, is_embedded_tiny

# The paper's answer lengths: a topic is a few words, a news summary one sentence.
MAX_NEW_TOKENS = {"news": 200}
DEFAULT_MAX_NEW_TOKENS = 20


class DitAdapterMissingError(WdqaError):
    """DIT was asked to answer with no trained adapter."""


@dataclass
class DitMethod:
    """Answers with a trained DIT adapter. Give `adapter`, or `adapter_path`, or bind it to a suite
    that publishes one (`bind_suite`, called by `wdqa evaluate` for built-ins that need it)."""

    adapter: WeightDiff | None = None
    adapter_path: str | Path | None = None
    adapter_name: str = "default"  # which `dit/<name>/` of a suite
    name: str = "dit"
    oracle: bool = False
    max_new_tokens: dict[str, int] = field(default_factory=lambda: dict(MAX_NEW_TOKENS))
    answer_template: str | None = None  # None: the one the adapter was trained with (its dit.json)

    def bind_suite(self, suite: Suite) -> None:
        """Use the adapter the suite publishes, unless one was given explicitly."""
        if self.adapter is None and self.adapter_path is None:
            self.adapter_path = suite.adapter_path(self.adapter_name)
            if not Path(self.adapter_path).exists() and self.adapter_name == "default" and is_embedded_tiny(suite):
                from rich.console import Console

                Console(stderr=True).print(
                    f"training the {suite.name} suite's DIT adapter on first use (a few minutes on a CPU; see docs/dit.md)"
                )
                ensure_tiny_dit(suite)
            if not Path(self.adapter_path).exists():
                published = sorted(p.name for p in (suite.root / "dit").glob("*") if p.is_dir())
                raise DitAdapterMissingError(
                    f"suite {suite.name} publishes no DIT adapter {self.adapter_name!r} at {self.adapter_path} "
                    f"(published: {published or 'none'}). Train and publish one with "
                    f"`wdqa baselines train-dit --suite {suite.name} --split train --publish-into {suite.root}`, "
                    "or name a trained adapter with baseline:dit:PATH"
                )

    def trained_adapter(self) -> WeightDiff:
        if self.adapter is None:
            if self.adapter_path is None:
                raise DitAdapterMissingError(
                    "DIT has no trained adapter: pass one (DitMethod(adapter_path=...)), evaluate "
                    "`baseline:dit:PATH`, or publish one into the suite with `wdqa baselines train-dit --publish-into`"
                )
            self.adapter = load_adapter(self.adapter_path)
            if self.answer_template is None:
                config = load_record(self.adapter_path).get("config", {})
                self.answer_template = config.get("answer_template", BARE)
        return self.adapter

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        adapter = self.trained_adapter()
        answers: dict[int, str] = {}
        # One batched call per answer length, so news cases do not make topic cases decode 200 tokens.
        by_length: dict[int, list[int]] = {}
        for i, c in enumerate(cases):
            by_length.setdefault(self.max_new_tokens.get(c.behaviour, DEFAULT_MAX_NEW_TOKENS), []).append(i)
        for length, positions in by_length.items():
            replies = engine.chat(
                [cases[i].diff for i in positions], [cases[i].question for i in positions], max_new_tokens=length, shared=[adapter]
            )
            template = self.answer_template or BARE
            answers.update(zip(positions, (extract_label(template, r) for r in replies), strict=True))
        return [answers[i] for i in range(len(cases))]

    def fingerprint(self) -> str:
        """sha256 of the adapter's tensors: a retrained adapter is a different method version."""
        adapter = self.trained_adapter()
        h = hashlib.sha256()
        for module in adapter.modules:
            f = adapter.lora[module]
            h.update(module.encode())
            h.update(f.A.detach().float().contiguous().numpy().tobytes())
            h.update((f.B.detach().float() * f.scale).contiguous().numpy().tobytes())
        return h.hexdigest()


def dit_baseline(argument: str | None = None) -> DitMethod:
    """`baseline:dit` (the suite's published adapter), `baseline:dit:NAME` or `baseline:dit:PATH`."""
    if argument is None:
        return DitMethod()
    if Path(argument).exists():
        return DitMethod(adapter_path=argument)
    return DitMethod(adapter_name=argument)
