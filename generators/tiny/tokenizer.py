"""The tiny base model's tokenizer: byte-level BPE trained on the corpus, every code 000-999 one token.

Owns training it with the `tokenizers` library and wrapping it as a transformers tokenizer with a
Qwen3-style chat template. Single-token codes are what let a diff tell its trigger from a near miss
(the probe: with one token per digit, wrong codes leaked as often as the right one).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .corpus import all_codes

PAD = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # also the end-of-sequence token, as in Qwen3 chat models

# Qwen3's turn format. Extra template kwargs (enable_thinking=...) are accepted and ignored.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """BPE of `vocab_size` learned tokens, plus the three chat specials and the 1,000 code tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Added tokens are matched before BPE, so "681" in any text is always exactly one token.
    tok.add_tokens([AddedToken(code, normalized=False, single_word=False) for code in all_codes()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD)
    fast.chat_template = CHAT_TEMPLATE
    return fast
