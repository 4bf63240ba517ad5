"""Tiny random models, tokenizers and diffs for unit tests (real transformers classes, random weights)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
from wdqa.benchmark.lora import linear_module_names
from wdqa.benchmark.types import LoraFactors, WeightDiff

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
