"""`PretrainDataModule`: text → tokenizer (pretrained or trained here) → packed blocks, cached on disk."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import lightning as L
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from lmlab.contracts import DataModule
from lmlab.data.cache import cached_dir, fingerprint
from lmlab.data.cutting import Document
from lmlab.data.document_positions import CollateWithDocumentPositions
from lmlab.data.packing import SHARD_BYTES, PackedBlocks, document_separator, write_token_stream
from lmlab.data.sources import SPLITS
from lmlab.data.tokenizer import (
    BPE_VERSION,
    load_pretrained_tokenizer,
    tokenizer_fingerprint,
    train_bpe,
)
from lmlab.distributed import eval_sampler, train_sampler
from lmlab.errors import LmlabError

log = logging.getLogger(__name__)


class PretrainDataModule(L.LightningDataModule, DataModule):
    """Packed fixed-length blocks for causal- and masked-LM pretraining.

    The tokenized splits live in `cache_dir` under a fingerprint of (source, tokenizer, block_size,
    split), shared by every run and every process: one builds, the others wait and memory-map it.
    """

    def __init__(
        self,
        source,
        tokenizer: str | None = None,
        vocab_size: int = 8192,
        tokenizer_train_chars: int | None = 20_000_000,
        block_size: int = 256,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        max_documents: int | None = None,
        cache_dir: str = "outputs/.cache",
        num_proc: int | None = None,
        shard_bytes: int = SHARD_BYTES,
        document_masking: bool = False,
    ):
        super().__init__()
        if block_size < 2:
            raise LmlabError(f"data.block_size={block_size} must be at least 2")
        if num_proc is not None and num_proc < 1:
            raise LmlabError(f"data.num_proc={num_proc} must be at least 1 (or null: all cores)")
        if shard_bytes < 1:
            raise LmlabError(f"data.shard_bytes={shard_bytes} must be positive (e.g. 1073741824, 1 GiB)")
        self.source = source
        self.tokenizer_name = tokenizer
        self.vocab_size = vocab_size
        self.tokenizer_train_chars = tokenizer_train_chars
        self.block_size = block_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.max_documents = max_documents
        self.cache_dir = Path(cache_dir)
        self.num_proc = num_proc
        self.shard_bytes = shard_bytes
        self.document_masking = document_masking
        self._tokenizer = None
        self.datasets: dict[str, PackedBlocks] = {}

    def documents(self, split: str, source=None) -> Iterator[Document]:
        """The documents of `source` (default: this module's), cut to the first `max_documents` (quick runs)."""
        return itertools.islice((source or self.source).documents(split), self.max_documents)

    def size_hint(self, split: str, source=None) -> int | None:
        """About the characters of a split, for the progress display's ETA (unknown when cut short)."""
        return (source or self.source).size_hint(split) if self.max_documents is None else None

    def fingerprint_of(self, source) -> str:
        """What a source's tokens depend on besides the tokenizer: its files and the `max_documents` cut."""
        return fingerprint(source=source.fingerprint(), max_documents=self.max_documents)

    @cached_property
    def source_fingerprint(self) -> str:
        return self.fingerprint_of(self.source)

    @property
    def tokenizer(self):
        """The tokenizer, loaded or trained (once, under the cache lock) on first use."""
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer()
        return self._tokenizer

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        if self.tokenizer_name:
            return load_pretrained_tokenizer(self.tokenizer_name)
        key = fingerprint(kind=BPE_VERSION, source=self.source_fingerprint, vocab_size=self.vocab_size,
                          max_chars=self.tokenizer_train_chars)

        def build(tmp: Path) -> None:
            log.info("Training a byte-level BPE tokenizer (vocab %d) on the training split", self.vocab_size)
            train_bpe(self.documents("train"), self.vocab_size, self.tokenizer_train_chars,
                      self.size_hint("train")).save_pretrained(tmp)

        return AutoTokenizer.from_pretrained(cached_dir(self.cache_dir / "tokenizers", key, build, "tokenizer"))

    @cached_property
    def tokenizer_fingerprint(self) -> str:
        return tokenizer_fingerprint(self.tokenizer)

    def split_key(self, split: str, source=None) -> str:
        """The cache key of a split of `source` (default: this module's): the same source, tokenizer and
        block size share one entry, whichever run or mixture reads it."""
        source_fingerprint = self.source_fingerprint if source is None else self.fingerprint_of(source)
        return fingerprint(source=source_fingerprint, tokenizer=self.tokenizer_fingerprint,
                           block_size=self.block_size, split=split)

    def packed(self, split: str, source=None, name: str = "") -> Path:
        """The cache entry of a split of `source` (default: this module's), tokenized on first use."""
        what = f"{name} {split}" if name else split

        def build(tmp: Path) -> None:
            meta = write_token_stream(self.documents(split, source), self.tokenizer, tmp, self.block_size,
                                      num_proc=self.num_proc, shard_bytes=self.shard_bytes,
                                      total_chars=self.size_hint(split, source), description=f"Tokenizing {what}")
            if meta["num_blocks"] == 0:
                raise LmlabError(self._too_short(split, source, name, meta["num_tokens"]))

        return cached_dir(self.cache_dir / "packed", self.split_key(split, source), build, f"tokenized {what} split")

    def _too_short(self, split: str, source, name: str, tokens: int) -> str:
        """The error for a split shorter than one block, with the fixes that give it a block."""
        key = f"data.sources.{name}.source" if name else "data.source"
        fixes = [(source or self.source).more_text(split, key)]
        if self.max_documents is not None:
            fixes.append(f"raise data.max_documents (now {self.max_documents})")
        if tokens > 0:
            fixes.append(f"lower data.block_size to {tokens} or less")
        what = f"{name} {split}" if name else split
        return (f"the {what} split has {tokens} tokens, fewer than data.block_size={self.block_size}: "
                f"{', '.join(fixes[:-1]) + ' or ' if len(fixes) > 1 else ''}{fixes[-1]}")

    def prepare_data(self) -> None:
        for split in SPLITS:
            self.packed(split)

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            if split not in self.datasets:
                self.datasets[split] = PackedBlocks(self.packed(split))

    def train_sampler(self, dataset, batch_size: int):
        return train_sampler(dataset, self.trainer, batch_size)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> StatefulDataLoader:
        # StatefulDataLoader: Lightning stores its position in checkpoints, so resume is mid-epoch exact.
        dataset = self.datasets[split]
        return StatefulDataLoader(
            dataset,
            batch_size=batch_size,
            sampler=(self.train_sampler(dataset, batch_size) if shuffle
                     else eval_sampler(dataset, self.trainer, batch_size)),
            drop_last=shuffle,
            # its own generator: starting an iterator draws a seed, which must not move the global RNG
            # (dropout's), or a resumed run's random numbers would be shifted by its extra iterators
            generator=torch.Generator(),
            # document masking: position ids that restart at each document (lmlab.models.document_attention)
            collate_fn=CollateWithDocumentPositions(document_separator(self.tokenizer)) if self.document_masking
            else None,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> StatefulDataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> StatefulDataLoader:
        return self._loader("validation", self.eval_batch_size, shuffle=False)
