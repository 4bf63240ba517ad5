"""Loading the base model M named by a suite: the project's tiny model, or any Hub causal LM.

Owns model/tokenizer loading and device/dtype choice; nothing here knows about diffs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from .errors import WdqaError

TINY_BASE_PREFIX = "wdqa/tiny"


class ModelLoadError(WdqaError):
    """The base model a suite names cannot be loaded (unknown id, offline, gated)."""


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the device supports it natively, fp32 on CPU (the tiny model is too small to care)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve_base_model(model_id: str, revision: str | None = None) -> str | Path:
    """A local folder for the tiny model (built and cached on first use), else the Hub id as is."""
    if model_id.startswith(TINY_BASE_PREFIX):
        from ..generators.tiny.build import ensure_tiny_base

        return ensure_tiny_base(model_id, expected_revision=revision)
    return model_id


def load_base_model(
    model_id: str, revision: str | None = None, device: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    hf_logging.disable_progress_bar()  # our own progress bars say what is happening
    where = resolve_base_model(model_id, revision)
    dev = pick_device(device)
    hub_revision = None if isinstance(where, Path) else revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, revision=hub_revision)
        model = AutoModelForCausalLM.from_pretrained(where, revision=hub_revision, dtype=pick_dtype(dev))
    except OSError as err:  # transformers' way of saying: no such model here, on the Hub, or reachable
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot load base model {model_id}{'@' + revision if revision else ''}: {first}; check the model id, "
            "your network and HF_TOKEN (for a gated or private model)"
        ) from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tokenizer


def compiled_decoder(model: PreTrainedModel) -> Callable[..., Any]:
    """The decoder through `torch.compile`: on a small model most of a training step is many small
    elementwise ops around the matmuls, which inductor fuses (docs/dit.md and docs/splits.md measure
    the gain). `dynamic=True`: sequence lengths change from batch to batch; one graph serves them."""
    return torch.compile(model.get_decoder(), dynamic=True)
