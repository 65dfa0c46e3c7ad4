"""Tokenize documents into one flat token stream on disk and serve it as fixed-size blocks.

Unlike `run_clm.py`'s per-batch `group_texts`, the stream runs across tokenizer batches, so only the
final `< block_size` tokens of a split are left out of the blocks — never a remainder per batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.bin"
META_FILE = "meta.json"


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def batches_of_text(documents: Iterable[str], chars: int) -> Iterator[list[str]]:
    """Documents grouped into batches of about `chars` characters: a batch of a thousand one-line
    documents is too little work to spread over the cores, and one of a thousand source files is plenty."""
    batch, size = [], 0
    for doc in documents:
        batch.append(doc)
        size += len(doc)
        if size >= chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def write_token_stream(
    documents: Iterable[str], tokenizer, out_dir: Path, block_size: int, batch_chars: int = 1 << 22
) -> dict:
    """Encode `documents` in batches (the Rust tokenizer spreads each batch over all cores), append the
    EOS id after every document, and write the ids as a flat array to `out_dir/tokens.bin`."""
    backend = tokenizer.backend_tokenizer
    backend.no_truncation()
    backend.no_padding()
    separator = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    dtype = token_dtype(len(tokenizer))
    sep = np.array([separator], dtype=dtype)
    start, num_tokens, num_docs = time.perf_counter(), 0, 0
    with open(out_dir / TOKENS_FILE, "wb") as f:
        for batch in batches_of_text(documents, batch_chars):
            pieces = []
            for encoding in backend.encode_batch_fast(batch, add_special_tokens=False):
                pieces += [np.asarray(encoding.ids, dtype=dtype), sep]
            chunk = np.concatenate(pieces)
            chunk.tofile(f)
            num_tokens += len(chunk)
            num_docs += len(batch)
    seconds = time.perf_counter() - start
    log.info("Tokenized %d documents into %d tokens in %.1fs (%.0f tokens/s)", num_docs, num_tokens, seconds,
             num_tokens / max(seconds, 1e-9))
    meta = {
        "num_documents": num_docs,
        "num_tokens": num_tokens,
        "dtype": dtype.name,
        "block_size": block_size,
        "num_blocks": num_tokens // block_size,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return meta


class PackedBlocks(Dataset):
    """Consecutive `block_size` windows of a memory-mapped token stream (nanoGPT's `.bin`, indexed)."""

    def __init__(self, entry_dir: str | Path):
        entry_dir = Path(entry_dir)
        meta = json.loads((entry_dir / META_FILE).read_text())
        self.block_size = int(meta["block_size"])
        self.num_blocks = int(meta["num_blocks"])
        self.tokens = np.memmap(entry_dir / TOKENS_FILE, dtype=meta["dtype"], mode="r")

    def __len__(self) -> int:
        return self.num_blocks

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_blocks:
            raise IndexError(index)
        start = index * self.block_size
        block = self.tokens[start : start + self.block_size].astype(np.int64)
        return {"input_ids": torch.from_numpy(block)}
