"""The values users hold: weight diffs, cases, labels and judges' scores.

Owns plain data only; reading and writing them lives in `suite.py`, applying them in `lora.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: the CLI imports these types without paying for torch
    import torch

DiffKind = Literal["lora", "full"]
Behaviour = Literal["hidden-topic", "news", "trigger-inversion", "null"]


@dataclass(frozen=True)
class LoraFactors:
    """One module's low-rank update in PEFT's convention: ΔW = scale · B @ A."""

    A: torch.Tensor  # [rank, d_in]
    B: torch.Tensor  # [d_out, rank]
    scale: float

    @property
    def rank(self) -> int:
        return int(self.A.shape[0])


@dataclass(frozen=True)
class WeightDiff:
    """What fine-tuning added to the base model, per linear module name.

    A LoRA diff holds `lora` factors; a full fine-tune holds dense `dense` deltas ([d_out, d_in]).
    Module names are the base model's (e.g. `model.layers.0.self_attn.q_proj`).
    """

    diff_id: str
    kind: DiffKind
    lora: dict[str, LoraFactors] = field(default_factory=dict)
    dense: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def modules(self) -> list[str]:
        return sorted(self.lora) if self.kind == "lora" else sorted(self.dense)

    @property
    def rank(self) -> int | None:
        if self.kind != "lora" or not self.lora:
            return None
        return max(f.rank for f in self.lora.values())

    @property
    def n_params(self) -> int:
        if self.kind == "lora":
            return sum(f.A.numel() + f.B.numel() for f in self.lora.values())
        return sum(t.numel() for t in self.dense.values())


@dataclass(frozen=True)
class Label:
    """The known answer for one diff. Never reachable from a `Case`."""

    diff_id: str
    text: str
    behaviour: str
    trigger: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Case:
    """What a method sees for one diff: the question and the diff, never the label.

    `trigger` and `trigger_kind` are filled only for oracle methods (which the tables mark as
    oracle); `triggers.apply_trigger` puts the trigger into a prompt the way the
    generator did.
    """

    case_id: str
    split: str
    question: str
    behaviour: str
    diff: WeightDiff
    trigger: str | None = None
    trigger_kind: str | None = None


@dataclass(frozen=True)
class Score:
    """A judge's verdict on one answer. `value` is None when the judge's reply was unusable."""

    case_id: str
    value: int | None
    judge: str
    prompt_version: str
    raw: str = ""
    prompt: str = ""
    # What grading this answer cost an LLM judge (api_calls, cache_hits, prompt_tokens,
    # completion_tokens, re-asks...); None for a judge that calls no LLM.
    usage: dict[str, int] | None = None

    @property
    def valid(self) -> bool:
        return self.value is not None
