"""glibc's allocator kept from handing PyTorch's freed memory back to the kernel between steps.

PyTorch on the CPU frees and allocates the same large temporaries every training and generation
step. glibc's defaults serve each one with a fresh mmap (or trim the heap after it is freed), so
every step faults its pages in again: the tiny suite's build spent a sixth of its CPU time in the
kernel (issue 23). Serving every block from the heap (no mmap) and trimming the heap only above
1 GiB keeps that memory in the process; the numbers computed are the same, only where the bytes
come from changes. A threshold alone is not enough: glibc caps it at 32 MiB, and the tiny base's
logits and their gradients (164 MB each) were mapped afresh every step. `experiments/allocator.sh`
measures it. WDQA_DEFAULT_MALLOC=1 keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import MutableMapping

# glibc's mallopt parameters (malloc.h) and the values wdqa uses: no mmap for blocks of the main
# heap (a thread's arena still maps a block larger than its 64 MiB heap: glibc falls back to mmap
# there), mmap above 32 MiB (glibc's largest threshold) where it still maps, trim only above 1 GiB
# of free heap, and grow the heap 256 MiB at a time.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
SETTINGS = {M_MMAP_MAX: 0, M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 1 << 30, M_TOP_PAD: 256 << 20}
# The same as environment variables, which glibc reads when a process starts: they reach every
# process wdqa starts (build pieces, method processes), whatever starts them.
ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(256 << 20)}
OPT_OUT = "WDQA_DEFAULT_MALLOC"


def tune_allocator(environ: MutableMapping[str, str] | None = None) -> bool:
    """Tune this process's allocator and set the variables its children inherit (a value the user
    set is kept). Returns whether this process was tuned: False off glibc or with WDQA_DEFAULT_MALLOC=1."""
    env = os.environ if environ is None else environ
    if env.get(OPT_OUT, "") not in ("", "0"):
        return False
    for name, value in ENV.items():
        env.setdefault(name, value)
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS.items())


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None
