"""DIT's training configuration: one dataclass with defaults that run on the tiny suite.

Owns the knobs and their validation (every problem reported at once); the training loop lives in
`train.py`. Loadable from TOML and overridable from the CLI.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ...core.errors import WdqaError
from ...core.lora import TARGET_MODULES


class DitConfigError(WdqaError, ValueError):
    """A DIT config with invalid values; the message lists every problem."""


@dataclass(frozen=True)
class DitConfig:
    """The paper's recipe (rank-16 LoRA on every linear layer, AdamW, SFT on the answer tokens).

    `batch_diffs` different weight diffs share one forward pass (one batch row each). Training
    runs `epochs` passes over the train diffs, checks the held-out split every `eval_every` steps
    and stops after `patience` checks without improvement (the adapter kept is the best one).
    """

    rank: int = 16
    alpha: float = 16.0
    targets: tuple[str, ...] = TARGET_MODULES
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 20
    epochs: int = 60
    batch_diffs: int = 16
    max_diffs: int | None = None  # use only the first N train diffs (after a seeded shuffle)
    fraction: float | None = None  # or this share of them (the data-scaling curve)
    # Random LoRAs of the train diffs' rank and per-module norm, labelled `null_label`, mixed into
    # training so that DIT learns to say "nothing hidden" (the paper's DIT never sees such diffs).
    null_diffs: int = 0
    null_label: str = "no hidden behaviour"
    # The text the adapter is trained to say: the paper's is the bare label. A small model may only
    # reach a label through the way it already talks about one ("Let me tell you about {label}!");
    # answers are read back through the same template (`answer_template.extract_label`).
    answer_template: str = "{label}"
    eval_every: int = 100
    eval_limit: int = 64  # held-out diffs scored per check
    patience: int = 4
    checkpoint_every: int = 100
    seed: int = 0
    max_new_tokens: int = 20  # greedy tokens per validation answer (topics; 200 for news)
    # torch.compile the decoder: same losses, faster steps once compiled (tiny model, CPU: 1.32x in
    # `wdqa bench dit`, after ~80 s of compiling; docs/dit.md). A speed setting, not part of the recipe a checkpoint must match.
    compile: bool = False

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def validate(self) -> None:
        problems = []
        for name in ("rank", "epochs", "batch_diffs", "eval_every", "checkpoint_every", "max_new_tokens"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.lr <= 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.max_diffs is not None and self.fraction is not None:
            problems.append("give max_diffs or fraction, not both")
        if self.null_diffs < 0:
            problems.append(f"null_diffs must be >= 0 (got {self.null_diffs})")
        if self.max_diffs is not None and self.max_diffs < 1:
            problems.append(f"max_diffs must be >= 1 (got {self.max_diffs})")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            problems.append(f"fraction must be in (0, 1] (got {self.fraction})")
        if self.answer_template.count("{label}") != 1:
            problems.append(f"answer_template must contain {{label}} exactly once (got {self.answer_template!r})")
        unknown = [t for t in self.targets if t not in TARGET_MODULES]
        if unknown:
            problems.append(f"unknown target modules {unknown}; known: {list(TARGET_MODULES)}")
        if problems:
            raise DitConfigError("invalid DIT config:\n  " + "\n  ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = list(self.targets)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DitConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DitConfigError(f"unknown DIT config keys {unknown}; known keys: {sorted(known)}")
        if "targets" in raw:
            raw = {**raw, "targets": tuple(raw["targets"])}
        return cls(**raw)

    @classmethod
    def from_toml(cls, path: str | Path) -> DitConfig:
        return cls.from_dict(tomllib.loads(Path(path).read_text()))

    def override(self, **changes: Any) -> DitConfig:
        """CLI overrides: options left unset (None) keep the config's value."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
