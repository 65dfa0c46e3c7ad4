"""Encode batches of text on `num_proc` processes, results in input order, a bounded number in flight.

One process leaves the batch to the Rust tokenizer's own threads, but turning each encoding's ids into an
array is Python work that holds the GIL; several processes spread both. Each worker encodes with the
tokenizer's threads off, so `num_proc` processes use `num_proc` cores. Workers are forked (Linux): they
start at once and import nothing; elsewhere they are spawned.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

Batch = tuple[list[str], list[bool]]  # texts, and whether each one ends its document (EOS after it)

_worker: dict = {}


def encode(backend, batch: Batch, dtype: np.dtype, separator: int) -> np.ndarray:
    """The ids of every text of `batch`, concatenated, with `separator` after each document's last piece."""
    texts, ends = batch
    sep = np.array([separator], dtype=dtype)
    pieces = []
    for encoding, end in zip(backend.encode_batch_fast(texts, add_special_tokens=False), ends, strict=True):
        pieces.append(np.asarray(encoding.ids, dtype=dtype))
        if end:
            pieces.append(sep)
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=dtype)


def _init_worker(tokenizer_json: str, dtype: str, separator: int) -> None:
    # The pool stops its workers with SIGTERM; a forked worker inherits its parent's handler, which under
    # SLURM is submitit's, ignoring SIGTERM (the pool's exit then waits forever on that worker).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # this process is one of num_proc: one core each
    from tokenizers import Tokenizer

    _worker.update(backend=Tokenizer.from_str(tokenizer_json), dtype=np.dtype(dtype), separator=separator)


def _encode_in_worker(batch: Batch) -> np.ndarray:
    return encode(_worker["backend"], batch, _worker["dtype"], _worker["separator"])


def default_num_proc() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def encode_batches(batches: Iterable[Batch], backend, dtype: np.dtype, separator: int,
                   num_proc: int) -> Iterator[tuple[Batch, np.ndarray]]:
    """(batch, its ids) for every batch, in order. A single batch, or `num_proc=1`, is encoded here."""
    batches = iter(batches)
    first = next(batches, None)
    second = next(batches, None) if first is not None else None
    if num_proc <= 1 or second is None:
        for batch in itertools.chain((b for b in (first, second) if b is not None), batches):
            yield batch, encode(backend, batch, dtype, separator)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with context.Pool(num_proc, _init_worker, (backend.to_str(), dtype.str, separator)) as pool:
        in_flight: deque = deque()
        for batch in itertools.chain((first, second), batches):
            in_flight.append((batch, pool.apply_async(_encode_in_worker, (batch,))))
            if len(in_flight) >= 2 * num_proc:  # bounded: the source is read only as fast as it is encoded
                done, result = in_flight.popleft()
                yield done, result.get()
        while in_flight:
            done, result = in_flight.popleft()
            yield done, result.get()
