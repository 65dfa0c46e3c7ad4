"""What the one-example-per-row data modules (classification, SFT) share: tokenized splits cached as `datasets`
folders, served with a seeded, resumable training order and DDP-exact evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import lightning as L
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from lmlab.contracts import DataModule
from lmlab.data.cache import cached_dir, fingerprint
from lmlab.data.tokenizer import BPE_VERSION, load_pretrained_tokenizer, train_bpe
from lmlab.distributed import eval_sampler, train_sampler
from lmlab.errors import LmlabError


class TokenizedSplitsDataModule(L.LightningDataModule, DataModule):
    """A subclass says how a split is tokenized (`_tokenized`: the cached folder) and batched (`collator`), what
    a tokenizer trained here learns from (`bpe_texts`, `bpe_key`) and what the task adds to any tokenizer
    (`prepared`)."""

    def __init__(self, splits: tuple[str, ...], max_documents: int | None, tokenizer: str | None,
                 init_from: str | None, vocab_size: int, batch_size: int, eval_batch_size: int | None,
                 num_workers: int, cache_dir: str):
        super().__init__()
        self.splits = tuple(splits)
        self.max_documents = max_documents
        self.tokenizer_name, self.init_from, self.vocab_size = tokenizer, init_from, vocab_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir)
        self.datasets: dict = {}

    def cut(self, dataset):
        """`dataset` cut to a fixed random `max_documents` examples (quick runs); the whole of it when unset."""
        if self.max_documents and len(dataset) > self.max_documents:
            return dataset.shuffle(seed=0).select(range(self.max_documents))
        return dataset

    @cached_property
    def tokenizer(self):
        """model.init_from's tokenizer, else data.tokenizer, else a byte-level BPE trained on the train split
        (cached); each made ready for the task by `prepared`."""
        from transformers import AutoTokenizer

        from lmlab.checkpoint.init_from import resolve_init_from

        if self.init_from:
            tokenizer = load_pretrained_tokenizer(resolve_init_from(self.init_from, self.cache_dir))
            if self.tokenizer_name:
                self.check_same_tokenizer(tokenizer, load_pretrained_tokenizer(self.tokenizer_name))
            return self.prepared(tokenizer)
        if self.tokenizer_name:
            return self.prepared(load_pretrained_tokenizer(self.tokenizer_name))
        key = fingerprint(kind=BPE_VERSION, max_documents=self.max_documents, vocab_size=self.vocab_size,
                          **self.bpe_key())

        def build(tmp: Path) -> None:
            train_bpe(self.bpe_texts(), self.vocab_size).save_pretrained(tmp)

        return self.prepared(AutoTokenizer.from_pretrained(cached_dir(self.cache_dir / "tokenizers", key, build,
                                                                      "tokenizer")))

    def check_same_tokenizer(self, init_from_tokenizer, named) -> None:
        """The model (and a preference run's reference, its copy) reads `model.init_from`'s token ids: a different
        `data.tokenizer` beside it would feed it ids of another vocabulary."""
        if init_from_tokenizer.get_vocab() != named.get_vocab():
            raise LmlabError(f"data.tokenizer={self.tokenizer_name!r} is not the tokenizer of model.init_from="
                             f"{self.init_from!r} ({len(named)} vs {len(init_from_tokenizer)} tokens): the model and "
                             "its reference read init_from's; drop model.tokenizer (data.tokenizer)")

    def bpe_texts(self) -> Iterator[str]:
        """The training texts a BPE trained here learns from."""
        raise NotImplementedError

    def bpe_key(self) -> dict:
        """What those texts depend on, for the tokenizer's cache key."""
        raise NotImplementedError

    def prepared(self, tokenizer):
        """The tokenizer as the task needs it (special tokens, a template); as it is by default."""
        return tokenizer

    def _tokenized(self, split: str) -> Path:
        """The split's tokenized `datasets` folder, built into the cache on first use."""
        raise NotImplementedError

    def collator(self):
        raise NotImplementedError

    def prepare_data(self) -> None:
        for split in self.splits:
            self._tokenized(split)

    def setup(self, stage: str | None = None) -> None:
        import datasets

        for split in self.splits:
            if split not in self.datasets:
                self.datasets[split] = datasets.load_from_disk(str(self._tokenized(split)))

    def dataloader(self, split: str, shuffle: bool = False) -> StatefulDataLoader:
        self.setup()
        dataset = self.datasets[split]
        return StatefulDataLoader(
            dataset,
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            # seeded, resumable shuffle; under DDP every validation example counted exactly once
            sampler=(train_sampler(dataset, self.trainer, self.batch_size) if shuffle
                     else eval_sampler(dataset, self.trainer, self.eval_batch_size)),
            generator=torch.Generator(),  # starting an iterator must not move the global (dropout) RNG
            collate_fn=self.collator(),
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("validation")

    def test_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("test")
