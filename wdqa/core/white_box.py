"""White-box reads of M and M′ = M ⊕ diff: logits and captured activations in one batched pass.

Owns turning inputs into token ids with a reply mask, capture names and their hooks, chunking a
forward over many rows, and the model's reading parts (decoder layers, final norm, unembedding).
`Engine.forward` and its accessors call here; diff arithmetic stays in lora.py, generation in engine.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from torch import nn

from .errors import WdqaError
from .lora import MultiDiffLinear, decoder_prefix

if TYPE_CHECKING:
    from .engine import Engine
    from .types import WeightDiff

Message = dict[str, str]


class CaptureError(WdqaError, ValueError):
    """A capture name that is not a module of the model; the message lists the valid names."""


class ForwardInputError(WdqaError, ValueError):
    """An input `Engine.forward` cannot read (empty, or of a type it does not take)."""


@dataclass(frozen=True)
class TokenIds:
    """Token ids used as they are (no chat template). Positions from `reply_from` on are the reply;
    None: no reply tokens. A plain list of ints is the same with no reply."""

    ids: Sequence[int]
    reply_from: int | None = None


# A conversation (its last assistant turn, when it ends with one, is the reply), a string (one user
# turn, rendered up to where the reply starts, as `chat()` does), or token ids.
ForwardInput = list[Message] | str | Sequence[int] | TokenIds


@dataclass(frozen=True)
class ForwardResult:
    """What one `Engine.forward` call read. Row b is inputs[b] under M ⊕ diffs[b] (M for None).

    Rows keep the caller's order and are right-padded to the longest input (`seq`), so position t
    is each input's t-th token. Every tensor is on the CPU; floats are float32.

    input_ids:      [batch, seq] long; the pad token after each input's end
    attention_mask: [batch, seq] bool; True on the input's own tokens
    reply_mask:     [batch, seq] bool; True on the reply's tokens
    reply_start:    [batch] long; the first reply position, which is the prompt's length (also when
                    the input has no reply): logits[b, reply_start[b] - 1] predict the reply's first token
    logits:         [batch, seq, vocab], or None when `forward(..., logits=False)`
    activations:    capture name -> [batch, seq, d]: the module's output (NAME or NAME:output), or
                    its first input (NAME:input). A decoder layer's output is the residual stream
                    after that layer (`Engine.layer_names`).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    reply_mask: torch.Tensor
    reply_start: torch.Tensor
    logits: torch.Tensor | None
    activations: dict[str, torch.Tensor]

    @property
    def lengths(self) -> torch.Tensor:
        """[batch] long: each input's own number of tokens."""
        return self.attention_mask.sum(dim=1)


# ---------------------------------------------------------------- the model's reading parts


def decoder(model: nn.Module) -> nn.Module:
    """The language model's decoder (it holds `layers` and `norm`), as `get_decoder()` gives it."""
    get_decoder = getattr(model, "get_decoder", None)
    found = get_decoder() if callable(get_decoder) else None
    if found is None or not hasattr(found, "layers"):
        raise WdqaError(f"{type(model).__name__} has no decoder with `layers` (get_decoder()); white-box reads need one")
    return found


def final_norm(model: nn.Module) -> nn.Module:
    """The norm the decoder applies after its last layer, before the unembedding."""
    return cast(nn.Module, decoder(model).norm)


def layer_names(model: nn.Module) -> list[str]:
    """The decoder layers' module names in order (`model.layers.0`, ...): capturing one reads the
    residual stream after it."""
    prefix = decoder_prefix(model)
    layers = cast(nn.ModuleList, decoder(model).layers)
    return [f"{prefix}.layers.{i}" if prefix else f"layers.{i}" for i in range(len(layers))]


def final_logit_softcap(model: nn.Module) -> float | None:
    """Gemma's final logit soft-capping (logits = cap · tanh(logits / cap)); None for models without."""
    config: Any = model.config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(config, "final_logit_softcapping", None)


@torch.no_grad()
def logit_lens(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Read residual-stream vectors as the model's final layer would: final norm, unembedding (and
    Gemma's soft-capping). hidden: [..., d] → float32 CPU logits [..., vocab]. The last layer's
    residual stream read this way gives the model's own logits."""
    head = cast(nn.Module, model.get_output_embeddings())  # type: ignore[operator]
    weight = cast(torch.Tensor, head.weight)
    x = final_norm(model)(hidden.to(weight.device, weight.dtype))
    logits = head(x).float()
    cap = final_logit_softcap(model)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits.cpu()


def capture_names(model: nn.Module) -> list[str]:
    """Every module name a capture may use (the language model's and any other, e.g. `lm_head`);
    each also takes `:input` or `:output` (the default). Wrapped linear layers keep their names."""
    names = []
    for name, _ in model.named_modules():
        if not name:
            continue
        parent, _, child = name.rpartition(".")
        if child == "base" and isinstance(model.get_submodule(parent) if parent else model, MultiDiffLinear):
            continue  # the frozen layer inside a wrapper: capturing the wrapper reads M ⊕ diff
        names.append(name)
    return names


def _name_patterns(names: Sequence[str]) -> list[str]:
    """Names with their indices folded ("model.layers.<i>.mlp"): the list an error can show."""
    return list(dict.fromkeys(re.sub(r"\.\d+(?=\.|$)", ".<i>", n) for n in names))


@dataclass(frozen=True)
class _Capture:
    key: str  # as the caller wrote it; the key in ForwardResult.activations
    module: nn.Module
    side: Literal["input", "output"]


def resolve_captures(model: nn.Module, capture: Sequence[str]) -> list[_Capture]:
    """Check every capture name before any forward pass and report all unknown ones at once."""
    if isinstance(capture, str):
        capture = [capture]
    valid = capture_names(model)
    known = set(valid)
    out, unknown = [], []
    for key in dict.fromkeys(capture):
        name, _, side = key.partition(":")
        if name not in known or side not in ("", "input", "output"):
            unknown.append(key)
            continue
        out.append(_Capture(key, model.get_submodule(name), "input" if side == "input" else "output"))
    if unknown:
        patterns = _name_patterns(valid)
        raise CaptureError(
            f"cannot capture {', '.join(map(repr, unknown))}: not a module of the model. Valid names are a module "
            f"name, optionally followed by :input or :output (the default), with <i> a layer or list index "
            f"(the decoder layers are {layer_names(model)[0]} to {layer_names(model)[-1]}): {', '.join(patterns)}"
        )
    return out


@contextmanager
def _hooks(captures: Sequence[_Capture], store: dict[str, torch.Tensor]) -> Iterator[None]:
    """Record each capture's tensor (float32, CPU) into `store` while the block runs."""

    def first_tensor(value: object) -> torch.Tensor:
        while isinstance(value, (tuple, list)):
            value = value[0]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"captured value is a {type(value).__name__}, not a tensor")
        return value

    def on_output(key: str) -> Callable[..., None]:
        return lambda module, args, output: store.__setitem__(key, first_tensor(output).detach().float().cpu())

    def on_input(key: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            value = args[0] if args else next(iter(kwargs.values()))
            store[key] = first_tensor(value).detach().float().cpu()

        return hook

    handles = []
    try:
        for c in captures:
            if c.side == "output":
                handles.append(c.module.register_forward_hook(on_output(c.key)))
            else:
                handles.append(c.module.register_forward_pre_hook(on_input(c.key), with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------- inputs


def encode(engine: Engine, item: ForwardInput) -> tuple[list[int], int]:
    """An input's token ids and where its reply starts (its length when it has no reply)."""
    tok = engine.tokenizer
    if isinstance(item, TokenIds):
        ids = [int(i) for i in item.ids]
        start = len(ids) if item.reply_from is None else item.reply_from
        if not 0 <= start <= len(ids):
            raise ForwardInputError(f"TokenIds.reply_from is {item.reply_from} but the input has {len(ids)} tokens")
    elif isinstance(item, torch.Tensor) or (isinstance(item, Sequence) and item and isinstance(item[0], int)):
        ids = [int(i) for i in (item.tolist() if isinstance(item, torch.Tensor) else cast(Sequence[int], item))]
        start = len(ids)
    elif isinstance(item, (str, list)):
        conversation = [{"role": "user", "content": item}] if isinstance(item, str) else list(item)
        reply = ""
        if conversation and conversation[-1].get("role") == "assistant":
            reply = conversation.pop()["content"]
        ids = list(tok(engine.render(conversation), add_special_tokens=False)["input_ids"]) if conversation else []
        start = len(ids)
        # The reply is tokenized apart from the prompt, so the boundary falls between two tokens.
        ids += list(tok(reply, add_special_tokens=False)["input_ids"]) if reply else []
    else:
        raise ForwardInputError(
            f"forward() takes conversations, strings or token ids (a list of ints or TokenIds), not a {type(item).__name__}"
        )
    if not ids:
        raise ForwardInputError("forward() got an input with no tokens")
    return ids, start


# ---------------------------------------------------------------- the batched, chunked pass


def chunks(lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Row indices grouped so that rows × longest length stays within `max_tokens` (one row at
    least) and rows within `max_rows`; rows of similar length go together (less padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    for i in order:
        group = groups[-1] if groups else None
        if group is not None and len(group) < max_rows and (len(group) + 1) * lengths[i] <= max_tokens:
            group.append(i)
        else:
            groups.append([i])
    return groups


def forward(
    engine: Engine,
    diffs: Sequence[WeightDiff | None],
    inputs: Sequence[ForwardInput],
    capture: Sequence[str] = (),
    logits: bool = True,
    shared: Sequence[WeightDiff] = (),
) -> ForwardResult:
    if len(diffs) != len(inputs):
        raise ValueError(f"forward() got {len(diffs)} diffs but {len(inputs)} inputs")
    captures = resolve_captures(engine.model, capture)
    encoded = [encode(engine, x) for x in inputs]
    lengths = [len(ids) for ids, _ in encoded]
    rows: dict[int, dict[str, torch.Tensor]] = {}  # row -> name -> [len, ...]
    pending = chunks(lengths, engine.max_batch, engine.forward_max_tokens)
    while pending:
        idx = pending.pop(0)
        got = None
        try:
            got = _forward_chunk(engine, [diffs[i] for i in idx], [encoded[i][0] for i in idx], captures, logits, shared)
        except torch.cuda.OutOfMemoryError:
            pass  # handled below, once the exception (and the activations its frames hold) is gone
        if got is None:
            engine._halve_after_oom(len(idx))
            engine.forward_max_tokens = max(1, len(idx) // 2 * max(lengths[i] for i in idx))
            # Every row not yet run is grouped again under the smaller limits, so a pass already
            # queued at the old size does not run out of memory a second time.
            left = [i for group in [idx, *pending] for i in group]
            pending = [[left[j] for j in group] for group in chunks([lengths[i] for i in left], engine.max_batch, engine.forward_max_tokens)]
            continue
        rows.update(zip(idx, got, strict=True))
    return _assemble(engine, encoded, rows, captures, logits)


def _forward_chunk(
    engine: Engine,
    diffs: Sequence[WeightDiff | None],
    ids: Sequence[list[int]],
    captures: Sequence[_Capture],
    logits: bool,
    shared: Sequence[WeightDiff],
) -> list[dict[str, torch.Tensor]]:
    """One forward pass over rows of token ids (right-padded); each row's tensors cut to its length."""
    n, longest = len(ids), max(len(x) for x in ids)
    input_ids = torch.full((n, longest), engine.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(n, longest, dtype=torch.long)
    for b, x in enumerate(ids):
        input_ids[b, : len(x)] = torch.tensor(x)
        mask[b, : len(x)] = 1
    store: dict[str, torch.Tensor] = {}
    with torch.no_grad(), engine.diffs_applied(diffs, shared), _hooks(captures, store):
        out = engine.model(input_ids=input_ids.to(engine.device), attention_mask=mask.to(engine.device), use_cache=False)
    if logits:
        store["__logits__"] = out.logits.float().cpu()
    engine.count_forward(diffs, [len(x) for x in ids])
    return [{k: v[b, : len(x)] for k, v in store.items()} for b, x in enumerate(ids)]


def _assemble(
    engine: Engine,
    encoded: Sequence[tuple[list[int], int]],
    rows: dict[int, dict[str, torch.Tensor]],
    captures: Sequence[_Capture],
    logits: bool,
) -> ForwardResult:
    n, longest = len(encoded), max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((n, longest), engine.tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros(n, longest, dtype=torch.bool)
    reply = torch.zeros(n, longest, dtype=torch.bool)
    for b, (ids, start) in enumerate(encoded):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention[b, : len(ids)] = True
        reply[b, start : len(ids)] = True

    def padded(key: str) -> torch.Tensor:
        first = rows[0][key]
        out = torch.zeros(n, longest, *first.shape[1:], dtype=first.dtype)  # [batch, seq, ...]
        for b in range(n):
            out[b, : rows[b][key].shape[0]] = rows[b][key]
        return out

    return ForwardResult(
        input_ids=input_ids,
        attention_mask=attention,
        reply_mask=reply,
        reply_start=torch.tensor([start for _, start in encoded], dtype=torch.long),
        logits=padded("__logits__") if logits else None,
        activations={c.key: padded(c.key) for c in captures},
    )
