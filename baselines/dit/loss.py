"""The DIT objective on a batch: row b runs M ⊕ Δ_{diff[b]} ⊕ A; SFT loss on the answer tokens.

Owns the stacked training diffs (every train diff's factors stacked once; a step only picks rows
through the row→diff index) and the per-row loss. The loss is the mean token cross-entropy of each
row's answer, then the mean over rows: every diff weighs the same whatever its label's length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from ...core.lora import MultiDiffLinear, RowAdapter, RowDense, applied, build_terms
from ...core.types import WeightDiff
from .adapter import DitAdapter
from .data import IGNORE, DitBatch


class StackedDiffs:
    """Every training diff's terms built once; `rows(index)` applies diffs[index[b]] to row b."""

    def __init__(self, wrapped: dict[str, MultiDiffLinear], diffs: Sequence[WeightDiff]) -> None:
        self.diff_ids = [d.diff_id for d in diffs]
        with torch.no_grad():
            self.terms = build_terms(wrapped, diffs, torch.zeros(1, dtype=torch.long))

    def rows(self, index: torch.Tensor) -> dict[str, list[RowAdapter | RowDense]]:
        out: dict[str, list[RowAdapter | RowDense]] = {}
        for name, terms in self.terms.items():
            out[name] = [
                RowAdapter(t.A, t.B, index.to(t.A.device)) if isinstance(t, RowAdapter) else RowDense(t.delta, index.to(t.row_task.device))
                for t in terms
            ]
        return out


def per_row_loss(
    model: PreTrainedModel,
    wrapped: dict[str, MultiDiffLinear],
    batch: DitBatch,
    diff_terms: dict[str, list[RowAdapter | RowDense]],
    adapter: DitAdapter | None,
    decoder: Callable[..., Any] | None = None,
) -> torch.Tensor:
    """[batch] mean answer-token cross-entropy of each row under M ⊕ Δ_row (⊕ A); `decoder` replaces
    the model's own (e.g. `wdqa.core.models.compiled_decoder(model)`)."""
    n_rows = batch.input_ids.shape[0]
    shared = [adapter.shared_terms(n_rows)] if adapter is not None else []
    with applied(wrapped, diff_terms, *shared):
        hidden = (decoder if decoder is not None else model.get_decoder())(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
        ).last_hidden_state
    targets = batch.labels[:, 1:]  # position t predicts token t+1
    mask = targets != IGNORE  # [batch, seq-1]
    # The vocabulary projection only where a loss is taken: on the tiny model it costs as much per
    # token as all decoder layers together, and answers are a few tokens of each sequence.
    logits = model.get_output_embeddings()(hidden[:, :-1][mask])  # [answer tokens, vocab]
    token_loss = F.cross_entropy(logits.float(), targets[mask], reduction="none")
    row_of_token = torch.arange(n_rows, device=mask.device).unsqueeze(1).expand_as(mask)[mask]
    sums = torch.zeros(n_rows, device=token_loss.device).index_add(0, row_of_token, token_loss)
    return sums / mask.sum(1).clamp(min=1)
