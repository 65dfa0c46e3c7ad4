"""Keep freed memory in the process (glibc malloc), so large tensors are not page-faulted in every step.

glibc serves allocations above its mmap threshold (at most 32 MB when adjusted dynamically) with a fresh
`mmap` and unmaps them on free; below it, it returns the top of the heap to the OS once more than
`M_TRIM_THRESHOLD` is free. A CPU training step allocates and frees the same large tensors (logits,
their gradient, attention and MLP activations) every step, so by default each step page-faults them in
again: measured on the 4x256 GPT-2 of `bench/train_throughput.py`, ~160k minor faults (≈650 MB) and
~10% of the CPU time per step. Raising both thresholds lets malloc reuse the freed blocks instead; peak
memory is unchanged, only no longer given back between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
# Blocks below 1 GiB come from the heap, which keeps up to 1 GiB free; larger ones are still mmapped.
_KEEP_BYTES = 1 << 30  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process, before training allocates); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator alone
        return False
    done = bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
    log.debug("glibc malloc thresholds raised: %s", done)
    return done
