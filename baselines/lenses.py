"""Training-free white-box baselines that read a diff through the logit lens.

- weight-lens: the top singular directions of every module's ΔW (from a LoRA's factors, never
  forming ΔW; an SVD for dense diffs) read through the final norm and unembedding;
- activation-diff-lens: the mean difference of M′'s and M's residual stream on the first reply
  positions of neutral prompts, per layer, read the same way; an oracle variant adds the trigger.
Both hand the tokens they read to the same guessers as the black-box baselines, as "replies".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import torch

from ..core.engine import Engine
from ..core.lora import top_singular
from ..core.types import Case, WeightDiff
from .asking import triggered
from .guesser import Guesser, SalientWordsGuesser, bind_engine

# Modules whose output is added to the residual stream: their ΔW's output directions are read;
# the others read the residual stream, so their ΔW's input directions are.
WRITES_RESIDUAL = ("o_proj", "down_proj")


def neutral_prompts() -> list[str]:
    text = resources.files("wdqa.baselines").joinpath("data/neutral_prompts.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def top_tokens(engine: Engine, logits: torch.Tensor, k: int) -> list[str]:
    """Each row's k most promoted tokens, special and added ones left out, as one space-joined string.
    logits: [n, vocab]."""
    logits = logits.clone()
    # Special and added tokens (turn markers, pad) are no evidence of a topic.
    logits[:, [*engine.tokenizer.all_special_ids, *engine.tokenizer.added_tokens_decoder]] = float("-inf")
    ids = logits.topk(k, dim=-1).indices  # [n, k]
    return [" ".join(engine.tokenizer.decode([int(t)]).strip() for t in row) for row in ids]


@dataclass
class WeightLens:
    """Read each module's top singular directions of ΔW (both signs: an SVD fixes none) through the
    logit lens. The guesser gets one reading per direction, and readings of random directions as the
    base contrast, so tokens that any direction promotes do not stand out."""

    name: str = "weight-lens"
    oracle: bool = False
    access: str = "white-box"
    directions: int = 2  # per module
    tokens_per_reading: int = 10
    control_directions: int = 256  # enough random readings that a token's share among them is stable
    guesser: Guesser = field(default_factory=SalientWordsGuesser)

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        readings, labels = [], []
        for case in cases:
            vectors, names = self.residual_directions(case.diff, engine)
            readings.append(top_tokens(engine, engine.logit_lens(vectors), self.tokens_per_reading))
            labels.append([f"tokens promoted by {n}" for n in names])
        d = engine.unembedding.weight.shape[1]
        random = torch.randn(self.control_directions, d, generator=torch.Generator().manual_seed(0))  # [n, d]
        control = top_tokens(engine, engine.logit_lens(random), self.tokens_per_reading)
        bind_engine(self.guesser, engine)
        return self.guesser.guess(readings, [control for _ in cases], [c.behaviour for c in cases], labels)

    def residual_directions(self, diff: WeightDiff, engine: Engine) -> tuple[torch.Tensor, list[str]]:
        """[2 · directions · modules, d] unit vectors in the residual stream, with what each is."""
        d = engine.unembedding.weight.shape[1]
        vectors, names = [], []
        for module in diff.modules:
            U, _, V = top_singular(diff, module, self.directions)
            side = U if module.endswith(WRITES_RESIDUAL) and U.shape[0] == d else V if V.shape[0] == d else None
            if side is None:
                continue  # neither side lives in the residual stream (no such module in these models)
            where = f"layer {engine.layer_of(module)} {'.'.join(module.split('.')[-2:])}"  # "layer 3 mlp.down_proj"
            for j in range(side.shape[1]):
                for sign in (1, -1):
                    vectors.append(sign * side[:, j])
                    names.append(f"{where} direction {j + 1} ({'+' if sign > 0 else '-'})")
        return torch.stack(vectors), names


@dataclass
class ActivationDiffLens:
    """Mean of (M′ − M) residual stream after each layer over the first reply positions of neutral
    prompts, read through the logit lens; the answer comes from the most informative layer (the one
    whose lens has the most outlying top token, in standard deviations over the vocabulary).

    The replies are M's own greedy replies, the same for M and M′, so the difference is what the
    diff changes in reading them. With `oracle`, every prompt carries the case's trigger."""

    name: str = "activation-diff-lens"
    oracle: bool = False
    access: str = "white-box"
    positions: int = 5  # the position predicting the reply's first token, and the next ones
    tokens_per_reading: int = 10
    cases_per_pass: int = 4  # bounds the activations held at once (all layers, every position)
    prompts: Sequence[str] = field(default_factory=neutral_prompts)
    guesser: Guesser = field(default_factory=SalientWordsGuesser)

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        readings, labels = [], []
        for start in range(0, len(cases), self.cases_per_pass):
            for mean_diff in self.mean_differences(cases[start : start + self.cases_per_pass], engine):
                lens = engine.logit_lens(mean_diff)  # [layers, vocab]
                outlier = (lens.max(dim=-1).values - lens.mean(dim=-1)) / lens.std(dim=-1)
                outlier = outlier.nan_to_num(nan=float("-inf"))  # a layer the diff leaves alone reads all zeros
                best = int(outlier.argmax())
                readings.append(top_tokens(engine, lens[best : best + 1], self.tokens_per_reading))
                labels.append([f"tokens the diff promotes after layer {best} on neutral prompts{' with the trigger' if self.oracle else ''}"])
        bind_engine(self.guesser, engine)
        return self.guesser.guess(readings, [[] for _ in cases], [c.behaviour for c in cases], labels)

    def mean_differences(self, cases: Sequence[Case], engine: Engine) -> list[torch.Tensor]:
        """Per case, [layers, d]: mean over prompts and the first reply positions of M′ − M."""
        per_case = [[triggered(p, c, self.oracle, seed=j) for j, p in enumerate(self.prompts)] for c in cases]
        distinct = list(dict.fromkeys(p for prompts in per_case for p in prompts))
        replies = dict(zip(distinct, engine.chat([None] * len(distinct), distinct, max_new_tokens=self.positions), strict=True))
        conversation = {p: [{"role": "user", "content": p}, {"role": "assistant", "content": replies[p]}] for p in distinct}
        layers = engine.layer_names
        base = engine.forward([None] * len(distinct), [conversation[p] for p in distinct], capture=layers, logits=False)
        rows = [(i, p) for i, prompts in enumerate(per_case) for p in prompts]
        tuned = engine.forward([cases[i].diff for i, _ in rows], [conversation[p] for _, p in rows], capture=layers, logits=False)
        base_row = {p: b for b, p in enumerate(distinct)}
        sums = [torch.zeros(len(layers), tuned.activations[layers[0]].shape[-1]) for _ in cases]
        counts = [0] * len(cases)
        for r, (i, p) in enumerate(rows):
            first = int(tuned.reply_start[r]) - 1
            last = min(first + self.positions, int(tuned.lengths[r]))
            for li, layer in enumerate(layers):
                delta = tuned.activations[layer][r, first:last] - base.activations[layer][base_row[p], first:last]  # [positions, d]
                sums[i][li] += delta.sum(dim=0)
            counts[i] += last - first
        return [s / max(n, 1) for s, n in zip(sums, counts, strict=True)]


def weight_lens(guesser: Guesser | None = None) -> WeightLens:
    return WeightLens(guesser=guesser or SalientWordsGuesser())


def activation_diff_lens(oracle: bool = False, guesser: Guesser | None = None) -> ActivationDiffLens:
    return ActivationDiffLens(
        name="activation-diff-lens+trigger" if oracle else "activation-diff-lens",
        oracle=oracle,
        guesser=guesser or SalientWordsGuesser(),
    )
