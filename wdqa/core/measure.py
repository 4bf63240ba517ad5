"""What a machine and a model cost: the matmul FLOP/s torch reaches here, a forward pass's FLOPs,
and peak memory (CUDA's counter, or this process's RSS on CPU).

Owns the measuring instruments every speed bench shares (evaluation, training, dense diffs); the
benches themselves live beside the code they measure.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def matmul_flops(size: int, dtype: torch.dtype = torch.float32, device: str = "cpu", seconds: float = 1.0) -> float:
    """Dense [size, size] @ [size, size] FLOP/s that torch reaches here (the roofline we compare to)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    if device != "cpu":
        torch.cuda.synchronize()
    return 2 * size**3 * n / (time.perf_counter() - t0)


def process_rss() -> int:
    """Bytes of this process resident in memory now (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_memory(device: torch.device) -> Iterator[list[int]]:
    """Peak bytes above the start: CUDA's allocator counter, or the process RSS sampled every 10 ms on CPU."""
    box = [0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield box
        torch.cuda.synchronize(device)
        box[0] = torch.cuda.max_memory_allocated(device) - base
        return
    start, peak, done = process_rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process_rss())
            done.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        done.set()
        thread.join()
        box[0] = max(peak[0], process_rss()) - start


def forward_flops(model: torch.nn.Module, tokens: int) -> float:
    """2 FLOPs per parameter per token (embeddings excluded: they are a lookup)."""
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    return 2.0 * params * tokens
