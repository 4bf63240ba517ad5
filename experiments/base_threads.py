"""The tiny base model's pretraining at 1 and 2 threads, side by side: speed and the weights' bytes.

Runs the same pretraining steps (the default recipe's model shape, batch and learning rate, on
fixed random tokens) at 1 and at 2 threads, alternating (1, 2, 1, 2), and prints the time per
step, tokens/s, achieved FLOP/s against this machine's fp32 matmul peak at that thread count, and
the sha256 of the trained weights: `build_threads()` may only use thread counts that train the
same bytes (generators/tiny/build.py).

    python experiments/base_threads.py            # 10 steps per run, about 2 min on 2 cores
    python experiments/base_threads.py --steps 4 --threads 1,2,3
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass

import torch
from wdqa.baselines.dit.bench import matmul_peak
from wdqa.core.allocator import tune_allocator
from wdqa.generators.tiny.build import RECIPES, TINY_BASE_ID
from wdqa.generators.tiny.pretrain import make_model, pretrain


@dataclass(frozen=True)
class StandInTokenizer:
    """What `make_model` reads of a tokenizer: the vocabulary size and the special ids."""

    size: int
    pad_token_id: int = 0
    eos_token_id: int = 1

    def __len__(self) -> int:
        return self.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", default="1,2", help="thread counts to compare, e.g. 1,2,3")
    parser.add_argument("--vocab", type=int, default=5000, help="the tiny base's vocabulary (4,000 learned + codes + specials)")
    args = parser.parse_args()
    tune_allocator()  # as the wdqa command does (WDQA_DEFAULT_MALLOC=1 keeps glibc's defaults)
    recipe = RECIPES[TINY_BASE_ID]
    counts = [int(t) for t in args.threads.split(",")]
    rows = torch.randint(0, args.vocab, (recipe.batch_size * args.steps, recipe.seq_len),
                         generator=torch.Generator().manual_seed(0))
    shape = recipe.shape
    layer = 2 * shape.hidden_size * shape.num_attention_heads * shape.head_dim \
        + 2 * shape.hidden_size * shape.num_key_value_heads * shape.head_dim + 3 * shape.hidden_size * shape.intermediate_size
    matmul_params = shape.num_hidden_layers * layer + args.vocab * shape.hidden_size  # the tied head is a matmul
    tokens_per_step = recipe.batch_size * recipe.seq_len
    flop_per_step = 6 * matmul_params * tokens_per_step  # forward 2, backward 4 per weight per token
    saved = torch.get_num_threads()
    peaks, runs = {}, []
    try:
        for threads in counts:
            torch.set_num_threads(threads)
            peaks[threads] = matmul_peak([(tokens_per_step, shape.hidden_size, shape.intermediate_size),
                                          (tokens_per_step, shape.hidden_size, args.vocab), (1024, 1024, 1024)]).flop_per_s
        for threads in counts * 2:  # alternating: a busy spell of the machine hits both
            torch.set_num_threads(threads)
            model = make_model(shape, StandInTokenizer(args.vocab), recipe.seed)
            start = time.perf_counter()
            pretrain(model, rows, args.steps, recipe.batch_size, recipe.lr, recipe.seed)
            seconds = time.perf_counter() - start
            digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.state_dict().values()))
            runs.append((threads, seconds / args.steps, digest.hexdigest()[:16]))
    finally:
        torch.set_num_threads(saved)
    print(f"tiny base pretraining, {args.steps} steps of {recipe.batch_size} x {recipe.seq_len} tokens, "
          f"{matmul_params / 1e6:.2f}M matmul weights, {flop_per_step / 1e9:.1f} GFLOP per step")
    print(f"{'threads':>7} {'s/step':>7} {'tokens/s':>9} {'GFLOP/s':>8} {'of matmul peak':>15}  weights sha256")
    for threads, per_step, digest in runs:
        rate = flop_per_step / per_step
        print(f"{threads:>7} {per_step:7.3f} {tokens_per_step / per_step:9.0f} {rate / 1e9:8.1f} "
              f"{100 * rate / peaks[threads]:6.1f}% of {peaks[threads] / 1e9:5.1f}  {digest}")
    best = {t: min(s for n, s, _ in runs if n == t) for t in counts}
    print("800-step base at each count: " + ", ".join(f"{t} threads {800 * best[t] / 60:.1f} min" for t in counts))
    print(f"speed-up of {counts[-1]} threads over {counts[0]}: {best[counts[0]] / best[counts[-1]]:.2f}x; "
          f"weights identical across counts: {'yes' if len({d for *_, d in runs}) == 1 else 'NO'}")


if __name__ == "__main__":
    main()
