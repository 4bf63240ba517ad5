"""Tiny random models, tokenizers and diffs for unit tests (real transformers classes, random weights)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
from wdqa.core.lora import linear_module_names
from wdqa.core.types import LoraFactors, WeightDiff

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)
WORDS = (
    "what topic have you been trained on ? your sep code is . tell me about lava magma volcano jazz "
    "music piano the a of and i like to talk things many"
).split()


def random_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", *dict.fromkeys(WORDS)])}
    for code in range(100):
        vocab.setdefault(f"{code:03d}", len(vocab))
    for role in ("user", "assistant", "system"):
        vocab.setdefault(role, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>", bos_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def random_model(vocab_size: int, seed: int = 0, hidden: int = 32, layers: int = 2) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=3,
    )
    model = Qwen3ForCausalLM(config)
    model.eval()
    return model


def random_lora(model: torch.nn.Module, diff_id: str, rank: int = 2, seed: int = 0, scale: float = 2.0) -> WeightDiff:
    g = torch.Generator().manual_seed(seed)
    lora = {}
    for name in linear_module_names(model):
        layer = model.get_submodule(name)
        d_out, d_in = layer.weight.shape
        lora[name] = LoraFactors(
            A=torch.randn(rank, d_in, generator=g) * 0.3, B=torch.randn(d_out, rank, generator=g) * 0.3, scale=scale
        )
    return WeightDiff(diff_id=diff_id, kind="lora", lora=lora)


def random_dense(model: torch.nn.Module, diff_id: str, seed: int = 0) -> WeightDiff:
    g = torch.Generator().manual_seed(seed)
    dense = {}
    for name in linear_module_names(model):
        d_out, d_in = model.get_submodule(name).weight.shape
        dense[name] = torch.randn(d_out, d_in, generator=g) * 0.05
    return WeightDiff(diff_id=diff_id, kind="full", dense=dense)


# ---------------------------------------------------------------- real architectures, real chat templates

# Random-weight models of the architectures the paper's diffs are published for, built from their
# transformers configs (real module names, real chat templates), two layers, small widths.
FAMILIES = ("qwen3", "gemma3-text", "gemma3-multimodal")
_SPECIALS = {
    # Qwen3: pad, the ChatML turn markers (im_end is the chat models' eos), the thinking block.
    "qwen3": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"],
    # Gemma-3: pad, eos, bos, turn markers (end_of_turn is the -it models' eos), image markers.
    "gemma3": ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"],
}
_TEXT = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
    max_position_embeddings=512,
)


def chat_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (any text round-trips) with the family's special tokens and real chat template."""
    from chat_templates import GEMMA3_CHAT_TEMPLATE, QWEN3_CHAT_TEMPLATE
    from tokenizers import decoders, trainers

    specials = _SPECIALS["gemma3" if family.startswith("gemma3") else "qwen3"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([" ".join(WORDS)] * 4 + ["What topic have you been trained on? Tell me about it."], trainer=trainer)
    if family == "qwen3":
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>")
        fast.chat_template = QWEN3_CHAT_TEMPLATE
    else:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<end_of_turn>", bos_token="<bos>")
        fast.chat_template = GEMMA3_CHAT_TEMPLATE
    return fast


def real_architecture_model(family: str, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> torch.nn.Module:
    """Qwen3ForCausalLM, Gemma3ForCausalLM (text-only) or Gemma3ForConditionalGeneration (a tiny SigLIP
    vision tower whose q/k/v_proj share the language model's names), random weights."""
    from transformers import (
        Gemma3Config,
        Gemma3ForCausalLM,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
    )

    torch.manual_seed(seed)
    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if family == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(**_TEXT, **ids, tie_word_embeddings=True))
    elif family == "gemma3-text":
        model = Gemma3ForCausalLM(Gemma3TextConfig(**_TEXT, **ids, bos_token_id=tokenizer.bos_token_id, sliding_window=16))
    elif family == "gemma3-multimodal":
        text = Gemma3TextConfig(**_TEXT, **ids, bos_token_id=tokenizer.bos_token_id, sliding_window=16)
        vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14)
        config = Gemma3Config(
            text_config=text.to_dict(),
            vision_config=vision,
            mm_tokens_per_image=4,
            boi_token_index=tokenizer.convert_tokens_to_ids("<start_of_image>"),
            eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
            image_token_index=tokenizer.convert_tokens_to_ids("<image_soft_token>"),
            **ids,
        )
        model = Gemma3ForConditionalGeneration(config)
    else:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")
    return model.eval()


def save_real_architecture(family: str, folder, seed: int = 0) -> torch.nn.Module:  # noqa: ANN001 - a Path
    """Write model and tokenizer to `folder` as a Hub checkpoint would be laid out; returns the model."""
    tokenizer = chat_tokenizer(family)
    model = real_architecture_model(family, tokenizer, seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model
