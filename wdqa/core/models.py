"""Loading the base model M named by a suite: the project's tiny model, or any Hub causal LM.

Owns model/tokenizer loading as ModelOptions say (model_options.py); fetching is model_fetch.py's;
nothing here knows about diffs.
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

from .model_fetch import ModelLoadError, fetch_base_model
from .model_options import ModelOptions, check_device_map, resolve_device, resolve_dtype
from .progress import transformers_bars_off
from .registry import Registry

__all__ = ["ModelLoadError", "ModelOptions", "load_base_model", "resolve_base_model", "pick_device", "pick_dtype"]

# A source builds a base model rather than fetching it: `source(model_id, revision)` -> its folder.
ModelSource = Callable[[str, str | None], Path]

# Sources by the model id prefix they serve. They live in higher parts (the tiny model is
# wdqa.generators.tiny's) and come in through entry points (group `wdqa.model_sources`; wdqa's own
# are in pyproject.toml), so this module never imports them.
MODEL_SOURCES: Registry[ModelSource] = Registry("model source", entry_points="wdqa.model_sources")


def pick_device(device: str | None = None) -> torch.device:
    """`device`, or CUDA when torch sees a GPU, else the CPU (benchmarks; users go through ModelOptions)."""
    return torch.device(resolve_device(ModelOptions(device=device or "auto")))


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the device supports it natively, fp32 on CPU (the tiny model is too small to care)."""
    return resolve_dtype(ModelOptions(), str(device))


def resolve_base_model(model_id: str, revision: str | None = None) -> Path:
    """The local folder of a base model: one a model source builds (the tiny model, built and cached
    on first use), an existing folder, or a Hub model fetched into the Hub cache at `revision` (with
    progress; a rerun after a cut download fetches only the files not yet complete)."""
    for prefix in MODEL_SOURCES.names():
        if model_id.startswith(prefix):
            return MODEL_SOURCES.get(prefix)(model_id, revision)
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        return folder
    return fetch_base_model(model_id, revision)


def load_base_model(
    model_id: str, revision: str | None = None, device: str | None = None, options: ModelOptions | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """M and its tokenizer, loaded as `options` say (`device` is the --device shortcut), frozen, in eval mode."""
    options = (options or ModelOptions()).with_device(device)
    check_device_map(options)
    dev = resolve_device(options)
    dtype = resolve_dtype(options, dev)
    where = resolve_base_model(model_id, options.revision or revision)
    extra: dict[str, Any] = {}
    if options.device_map is not None:
        extra["device_map"] = options.device_map
    if options.attn_implementation is not None:
        extra["attn_implementation"] = options.attn_implementation
    try:
        with transformers_bars_off():  # the download above showed progress; loading a folder needs none
            tokenizer = AutoTokenizer.from_pretrained(where)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **extra)
    except (OSError, ValueError, ImportError) as err:  # a folder that is no model, or an attention backend not installed
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"cannot load base model {model_id}{'@' + revision if revision else ''} from {where}: {first}"
        ) from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if options.device_map is None:
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
