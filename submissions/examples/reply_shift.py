"""Example white-box method: where M′'s first reply tokens differ from M's, read two ways.

For the suite's question it runs M′ and M in one batched `engine.forward` pass, then takes
  - the next-token log-probabilities at the first reply position: the words M′ favours over M;
  - the residual stream after the middle layer, M′ − M, through the logit lens.
It uses only the public API: `engine.forward`, `engine.layer_names`, `engine.logit_lens`.
Run it with:  wdqa evaluate submissions/examples/reply_shift.py --baselines activation-diff-lens
"""

import torch
from wdqa.core.engine import Engine
from wdqa.core.types import Case


def standardized(scores: torch.Tensor) -> torch.Tensor:
    return (scores - scores.mean(-1, keepdim=True)) / scores.std(-1, keepdim=True)


class ReplyShift:
    name = "reply-shift"
    oracle = False
    access = "white-box"  # it reads logits and activations, not only replies
    top_k = 3

    def answer(self, cases: list[Case], engine: Engine) -> list[str]:
        n = len(cases)
        middle = engine.layer_names[engine.n_layers // 2]
        # Rows 0..n-1 run M′ = M ⊕ case.diff, rows n..2n-1 run M (None), all on the same question.
        read = engine.forward(
            [c.diff for c in cases] + [None] * n, [c.question for c in cases] * 2, capture=[middle]
        )
        at = read.reply_start - 1  # [2n]: the position whose logits predict the reply's first token
        rows = torch.arange(2 * n)
        logprobs = read.logits[rows, at].log_softmax(-1)  # [2n, vocab]
        shift = read.activations[middle][rows, at]  # [2n, d]
        by_logits = logprobs[:n] - logprobs[n:]  # [n, vocab]: what M′ favours over M
        by_lens = engine.logit_lens(shift[:n] - shift[n:])  # [n, vocab]
        both = standardized(by_logits) + standardized(by_lens)  # [n, vocab]: each reading counts the same
        skip = set(engine.tokenizer.all_special_ids)
        return [self.words(engine, both[i], skip) for i in range(n)]

    def words(self, engine: Engine, scores: torch.Tensor, skip: set[int]) -> str:
        """The top_k best-scored tokens that are words (no special tokens, no fragments)."""
        picked: list[str] = []
        for token in scores.argsort(descending=True).tolist():
            word = engine.tokenizer.decode([token]).strip()
            if token not in skip and word.isalpha() and len(word) > 2 and word.lower() not in picked:
                picked.append(word.lower())
            if len(picked) == self.top_k:
                break
        return " ".join(picked)
