"""Batched multi-diff inference: one forward pass serves many cases, each row with its own diff.

Owns chat formatting, padding, batching and decoding on top of `lora.py`. Methods reach M and M′
only through an `Engine`, so black-box methods get batching across diffs for free.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import white_box
from .errors import WdqaError, WdqaWarning
from .lora import MultiDiffLinear, applied, build_terms, install_multi_diff
from .meter import Access, AccessError, Meter, unseal
from .types import WeightDiff
from .white_box import ForwardInput, ForwardResult

Message = dict[str, str]
# An empty diff: rows that should run the base model M index it, so one batch mixes M and many M′.
BASE_ROW = WeightDiff(diff_id="__base__", kind="lora")
Conversation = list[Message]


class GpuMemoryError(WdqaError):
    """The GPU ran out of memory even one sequence at a time."""


def _contiguous_input(module: torch.nn.Module, args: tuple) -> tuple:
    """The vocabulary projection's input made contiguous. Generation slices the last position
    ([batch, 1, d] with the whole sequence's batch stride); on that strided 3-D input torch's CPU
    bf16 matmul expands the [vocab, d] weight once per row: measured at Qwen3's vocabulary (151,936 x
    1024) and 8 rows, 2.4 GB and 20 s against 4 MB and 0.06 s once contiguous."""
    return (args[0].contiguous(), *args[1:])


@dataclass
class GenerationStats:
    """Counters a run manifest records (per-case counts are the `meter`'s)."""

    sequences: int = 0
    new_tokens: int = 0
    forward_batches: int = 0


@dataclass
class Engine:
    """The base model M with a batched `chat()` over any mix of diffs (None = the base model).

    `shared` adapters (e.g. a DIT adapter) are added on top of every row's own diff. White-box
    methods read logits and activations with `forward()` (batched over diffs the same way) and the
    model's parts with `layer_names`, `logit_lens()` and `capture_names()`.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    max_batch: int = 64
    # forward() runs at most this many (padded) tokens per pass; inputs beyond it go in more passes.
    forward_max_tokens: int = 16384
    meter: Meter = field(default_factory=Meter)  # per-diff counts of what ran on M and M′
    # What the running method declared: a black-box method may only `chat` (docs/white-box.md).
    access: Access = "white-box"
    method_name: str = "the method"
    stats: GenerationStats = field(default_factory=GenerationStats)

    def __post_init__(self) -> None:
        self.model.eval()
        self.wrapped: dict[str, MultiDiffLinear] = install_multi_diff(self.model)
        head = self.model.get_output_embeddings()
        if head is not None and _contiguous_input not in head._forward_pre_hooks.values():
            head.register_forward_pre_hook(_contiguous_input)
        if self.tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set one before building an Engine")
        self.tokenizer.padding_side = "left"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def render(self, conversation: Conversation, reply_prefix: str = "") -> str:
        """The prompt text for a conversation, ending where the assistant's reply starts, or after
        `reply_prefix` when one is given (a prefill: the reply's opening, which the model continues)."""
        prompt = self.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        return str(prompt) + reply_prefix

    def count_forward(self, diffs: Sequence[WeightDiff | None], lengths: Sequence[int]) -> None:
        """Meter one forward() pass: each row's tokens on M or M′, and one white-box read per row."""
        self.stats.forward_batches += 1
        for d, n in zip(diffs, lengths, strict=True):
            self.meter.count(unseal(d), **{f"forward_tokens_{'base' if d is None else 'diff'}": n, "white_box_reads": 1})

    @contextmanager
    def diffs_applied(self, diffs: Sequence[WeightDiff | None], shared: Sequence[WeightDiff] = ()) -> Iterator[None]:
        """Within the block, batch row b of a forward pass runs M ⊕ diffs[b] (M for None) ⊕ shared."""
        diffs = [unseal(d) for d in diffs]
        # Rows without a diff point at BASE_ROW, the last task.
        # One task per distinct diff object: a method that asks one diff many prompts (20 questions)
        # stacks its factors once, not once per row.
        present = list({id(d): d for d in diffs if d is not None}.values())
        task_of = {id(d): i for i, d in enumerate(present)}
        row_task = torch.tensor([task_of[id(d)] if d is not None else len(present) for d in diffs])
        with self.meter.pause():  # applying a diff is the Engine's read, not the method's
            per_row = build_terms(self.wrapped, [*present, BASE_ROW], row_task) if present else {}
            shared_terms = [build_terms(self.wrapped, [a], torch.zeros(len(diffs), dtype=torch.long)) for a in shared]
        with applied(self.wrapped, per_row, *shared_terms):
            yield

    def forward(
        self,
        diffs: Sequence[WeightDiff | None],
        inputs: Sequence[ForwardInput],
        *,
        capture: Sequence[str] = (),
        logits: bool = True,
        shared: Sequence[WeightDiff] = (),
    ) -> ForwardResult:
        """Logits and captured activations of M ⊕ diffs[i] (M for None) on inputs[i], batched over
        diffs as `chat()` is and chunked to `forward_max_tokens` tokens per pass.

        inputs[i] is a conversation (a last assistant turn is the reply), a string (one user turn,
        rendered up to where the reply starts), or token ids (a list of ints, or `TokenIds` with
        where the reply starts). `capture` names modules (`capture_names()`): NAME or NAME:output
        reads the module's output, NAME:input its input; `layer_names` are the residual stream
        after each decoder layer. Shapes are documented on `ForwardResult`."""
        self.require_white_box("engine.forward()")
        return white_box.forward(self, diffs, inputs, capture=capture, logits=logits, shared=shared)

    def require_white_box(self, what: str) -> None:
        """Stop a method that declared black-box access from reading inside the models."""
        if self.access != "white-box":
            raise AccessError(
                f"method {self.method_name} declares black-box access but called {what} (a white-box read); "
                'set `access = "white-box"` on the method to read weights and activations'
            )

    @property
    def layer_names(self) -> list[str]:
        """The decoder layers' module names in order; capture one to read the residual stream after it."""
        return white_box.layer_names(self.model)

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def capture_names(self) -> list[str]:
        """Every module name `forward(capture=...)` takes (each also as NAME:input / NAME:output)."""
        return white_box.capture_names(self.model)

    @property
    def final_norm(self) -> torch.nn.Module:
        """The norm after the last decoder layer (the logit lens applies it before the unembedding)."""
        return white_box.final_norm(self.model)

    @property
    def unembedding(self) -> torch.nn.Module:
        """The output projection to the vocabulary ([vocab, d] weight)."""
        return self.model.get_output_embeddings()

    def logit_lens(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., d] residual-stream vectors → float32 CPU logits [..., vocab] through the final norm
        and unembedding (and Gemma's soft-capping)."""
        self.require_white_box("engine.logit_lens()")
        return white_box.logit_lens(self.model, hidden)

    def layer_of(self, module: str) -> int | None:
        """The decoder layer a module name (a diff's, a capture's) belongs to; None outside the layers."""
        for i, name in enumerate(self.layer_names):
            if module == name or module.startswith(name + "."):
                return i
        return None

    @torch.no_grad()
    def chat(
        self,
        diffs: Sequence[WeightDiff | None],
        conversations: Sequence[Conversation | str],
        max_new_tokens: int = 30,
        temperature: float = 0.0,
        shared: Sequence[WeightDiff] = (),
        seed: int = 0,
        reply_prefix: str = "",
    ) -> list[str]:
        """Reply to conversations[i] with M ⊕ diffs[i] (⊕ shared adapters). A str is one user turn.

        With `reply_prefix`, every reply starts with that text (prefilled, not generated) and the
        continuation alone is returned."""
        if len(diffs) != len(conversations):
            raise ValueError(f"chat() got {len(diffs)} diffs but {len(conversations)} conversations")
        convs = [[{"role": "user", "content": c}] if isinstance(c, str) else c for c in conversations]
        prompts = [self.render(c, reply_prefix) for c in convs]
        # Sorting by length keeps padding low; results are put back in the caller's order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: dict[int, str] = {}
        start = 0
        while start < len(order):
            idx = order[start : start + self.max_batch]
            texts: list[str] | None = None
            try:
                texts = self._generate(
                    [diffs[i] for i in idx], [prompts[i] for i in idx], max_new_tokens, temperature, shared, seed + start
                )
            except torch.cuda.OutOfMemoryError:
                pass  # handled below, once the exception (and the activations its frames hold) is gone
            if texts is None:
                self._halve_after_oom(len(idx))
                continue  # the same rows again, in smaller batches
            out.update(zip(idx, texts, strict=True))
            start += len(idx)
        return [out[i] for i in range(len(prompts))]

    def _halve_after_oom(self, rows: int) -> None:
        """After a GPU out-of-memory with `rows` rows, go on with half as many per forward pass (and
        say which --max-batch starts there); at one row, stop with what else to try."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if rows <= 1:
            raise GpuMemoryError(
                "out of GPU memory running one sequence at a time (--max-batch 1): the model does not fit "
                "with its activations; load it across GPUs (--model-args device_map=auto), in bf16 "
                "(--model-args dtype=bf16), or give it a GPU with more memory"
            )
        self.max_batch = rows // 2
        warnings.warn(
            f"out of GPU memory with {rows} rows per forward pass; going on with {self.max_batch} "
            f"(pass --max-batch {self.max_batch} to start there)",
            WdqaWarning,
            stacklevel=3,
        )

    def _generate(
        self,
        diffs: Sequence[WeightDiff | None],
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float,
        shared: Sequence[WeightDiff],
        seed: int,
    ) -> list[str]:
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        batch = len(prompts)
        gen_kwargs: dict = dict(max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if temperature > 0:
            torch.manual_seed(seed)
            gen_kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self.diffs_applied(diffs, shared):
            output = self.model.generate(**enc, **gen_kwargs)
        new = output[:, enc["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        eos = self.tokenizer.eos_token_id
        generated = ((new != self.tokenizer.pad_token_id) & (new != eos)).sum(dim=1).tolist()  # [batch]
        self.stats.sequences += batch
        self.stats.forward_batches += 1
        self.stats.new_tokens += sum(generated)
        for d, read, made in zip(diffs, enc["attention_mask"].sum(dim=1).tolist(), generated, strict=True):
            side = "base" if d is None else "diff"
            self.meter.count(unseal(d), **{f"forward_tokens_{side}": read, f"generated_tokens_{side}": made})
        return [t.strip() for t in texts]
