"""Tokenize documents into one flat token stream on disk and serve it as fixed-size blocks.

Unlike `run_clm.py`'s per-batch `group_texts`, the stream runs across tokenizer batches, so only the
final `< block_size` tokens of a split are left out of the blocks — never a remainder per batch.
Memory stays bounded whatever the corpus: documents larger than a batch are cut at lines (`cutting`),
batches are encoded on `num_proc` processes (`encode_pool`) and the ids go straight to shard files.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lmlab.data.cutting import Document, cuts_at_lines, document_pieces
from lmlab.data.encode_pool import Batch, default_num_proc, encode_batches
from lmlab.data.progress import DataProgress

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.bin"  # the single token file of entries written before shards
SHARD_FILE = "tokens-{:05d}.bin"
META_FILE = "meta.json"
SHARD_BYTES = 1 << 30


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def document_separator(tokenizer) -> int:
    """The id written after every document: the EOS token (SEP for tokenizers without one, e.g. BERT's)."""
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id


def batches_of_text(documents: Iterable[Document], chars: int, cuttable: bool = True) -> Iterator[Batch]:
    """Documents grouped into batches of about `chars` characters: a batch of a thousand one-line
    documents is too little work to spread over the cores, and one of a thousand source files is plenty.
    A document longer than a sixteenth of a batch is cut at lines into pieces of that size (when the
    tokenizer allows it), so even one huge document fills batches of many pieces."""
    texts: list[str] = []
    ends: list[bool] = []
    size = 0
    for document in documents:
        pieces = document_pieces(document, max(chars // 16, 1), cuttable)
        piece = next(pieces)  # a document has at least one piece (an empty one is "")
        for following in itertools.chain(pieces, [None]):
            texts.append(piece)
            ends.append(following is None)  # the document's last piece: the EOS goes after it
            size += len(piece)
            if size >= chars:
                yield texts, ends
                texts, ends, size = [], [], 0
            piece = following
    if texts:
        yield texts, ends


class ShardWriter:
    """Appends ids to `tokens-NNNNN.bin` files of `shard_tokens` ids each (the last one shorter)."""

    def __init__(self, out_dir: Path, shard_tokens: int):
        self.out_dir, self.shard_tokens = out_dir, shard_tokens
        self.shards: list[dict] = []
        self._file = None

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            if self._file is None or self.shards[-1]["num_tokens"] == self.shard_tokens:
                self._open_next()
            room = self.shard_tokens - self.shards[-1]["num_tokens"]
            ids[:room].tofile(self._file)
            self.shards[-1]["num_tokens"] += len(ids[:room])
            ids = ids[room:]

    def _open_next(self) -> None:
        self.close()
        name = SHARD_FILE.format(len(self.shards))
        self._file = open(self.out_dir / name, "wb")  # noqa: SIM115 - stays open across write() calls
        self.shards.append({"file": name, "num_tokens": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_token_stream(
    documents: Iterable[Document],
    tokenizer,
    out_dir: Path,
    block_size: int,
    batch_chars: int = 1 << 20,
    num_proc: int | None = None,
    shard_bytes: int = SHARD_BYTES,
    total_chars: int | None = None,
    description: str = "Tokenizing",
) -> dict:
    """Encode `documents` in batches on `num_proc` processes (default: all cores), append the EOS id
    after every document, and write the ids in order to shards of at most `shard_bytes` (a whole number
    of blocks each, so no block spans two files) in `out_dir`, indexed by `out_dir/meta.json`."""
    backend = tokenizer.backend_tokenizer
    backend.no_truncation()
    backend.no_padding()
    separator = document_separator(tokenizer)
    dtype = token_dtype(len(tokenizer))
    shard_tokens = max(shard_bytes // dtype.itemsize // block_size, 1) * block_size
    cuttable = cuts_at_lines(backend)
    if not cuttable:
        log.warning("This tokenizer's pre-tokenizer is not byte-level BPE: documents are encoded whole, so "
                    "memory grows with the largest document")
    start, num_tokens, num_docs = time.perf_counter(), 0, 0
    writer = ShardWriter(out_dir, shard_tokens)
    batches = batches_of_text(documents, batch_chars, cuttable)
    with DataProgress(description, total_chars) as progress:
        try:
            for (texts, ends), ids in encode_batches(batches, backend, dtype, separator,
                                                      num_proc or default_num_proc()):
                writer.write(ids)
                num_tokens += len(ids)
                num_docs += sum(ends)
                progress.advance(sum(map(len, texts)), len(ids))
        finally:
            writer.close()
    seconds = time.perf_counter() - start
    log.info("Tokenized %d documents into %d tokens (%d shards) in %.1fs (%.0f tokens/s)", num_docs, num_tokens,
             len(writer.shards), seconds, num_tokens / max(seconds, 1e-9))
    meta = {
        "num_documents": num_docs,
        "num_tokens": num_tokens,
        "dtype": dtype.name,
        "block_size": block_size,
        "num_blocks": num_tokens // block_size,
        "shards": writer.shards,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return meta


def read_token_stream(entry_dir: str | Path) -> np.ndarray:
    """The whole token stream of an entry, shards concatenated (for tests and inspection)."""
    blocks = PackedBlocks(entry_dir)
    return np.concatenate(blocks.shards) if blocks.shards else np.empty(0, dtype=np.uint16)


class PackedBlocks(Dataset):
    """Consecutive `block_size` windows of a memory-mapped token stream held in one or more shard files
    (nanoGPT's `.bin`, indexed): block `i` of the stream, whichever shard it lies in."""

    def __init__(self, entry_dir: str | Path):
        self.entry_dir = entry_dir = Path(entry_dir)
        meta = json.loads((entry_dir / META_FILE).read_text())
        self.block_size = int(meta["block_size"])
        self.num_blocks = int(meta["num_blocks"])
        shards = meta.get("shards", [{"file": TOKENS_FILE, "num_tokens": meta["num_tokens"]}])
        dtype = np.dtype(meta["dtype"])
        self.shards = []
        for shard in shards:
            path = entry_dir / shard["file"]
            if not path.is_file() or path.stat().st_size != shard["num_tokens"] * dtype.itemsize:
                raise OSError(f"{path} does not hold the {shard['num_tokens']} tokens {META_FILE} lists; "
                              f"delete {entry_dir} to rebuild it")
            self.shards.append(np.memmap(path, dtype=dtype, mode="r", shape=(shard["num_tokens"],)))
        # the first block of each shard: every shard but the last holds a whole number of blocks
        self.first_block = list(np.cumsum([0] + [len(s) // self.block_size for s in self.shards[:-1]]))

    def __len__(self) -> int:
        return self.num_blocks

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_blocks:
            raise IndexError(index)
        shard = bisect.bisect_right(self.first_block, index) - 1
        start = (index - self.first_block[shard]) * self.block_size
        block = self.shards[shard][start : start + self.block_size].astype(np.int64)
        return {"input_ids": torch.from_numpy(block)}
