"""`ClassificationDataModule`: labelled texts (or text pairs) → checked → tokenized (cached) → padded batches."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from lmlab.data.cache import cached_dir, fingerprint
from lmlab.data.tokenized_splits import TokenizedSplitsDataModule
from lmlab.data.tokenizer import tokenizer_fingerprint
from lmlab.errors import LmlabError

log = logging.getLogger(__name__)


def label_names_of(datasets: list, label_column: str) -> list[str]:
    """Label names the datasets declare (a `ClassLabel` feature), else the distinct values of all of them,
    sorted (numerically when all are integers): the same order whatever the file order, so ids stay stable."""
    feature = datasets[0].features[label_column]
    if hasattr(feature, "names"):
        return list(feature.names)
    values = {v for dataset in datasets for v in dataset[label_column]}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return [str(v) for v in sorted(values)]
    return sorted({str(v) for v in values})


def encode_labels(values: list, labels: list[str], names: list[str] | None, split: str, column: str) -> list[int]:
    """Label values → ids in `labels`. Values may be names, or ids (ints, or `ClassLabel` ids given `names`)."""
    label2id = {name: i for i, name in enumerate(labels)}
    ids, bad = [], set()
    for value in values:
        if names is not None and isinstance(value, int) and 0 <= value < len(names):
            value = names[value]
        if str(value) in label2id:
            ids.append(label2id[str(value)])
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
            ids.append(value)  # an id into the declared names, e.g. SST-2's 0/1 for [negative, positive]
        else:
            bad.add(value)
    if bad:
        shown = sorted(map(repr, bad))[:5]
        raise LmlabError(f"data.label_column={column!r} of the {split} split holds labels {', '.join(shown)} not in "
                         f"the label set {labels} (data.labels)")
    return ids


def ensure_cls_sep(tokenizer):
    """Make the tokenizer wrap inputs as <s> A </s> (</s> B </s>) if it adds no special tokens itself.

    A classifier reads the first position; a byte-level BPE trained by lmlab (for packed pretraining) adds
    nothing, so the RoBERTa template is set here.
    """
    from tokenizers.processors import TemplateProcessing

    cls, sep = tokenizer.cls_token, tokenizer.sep_token
    if cls is None or sep is None or tokenizer("a")["input_ids"][0] == tokenizer.cls_token_id:
        return tokenizer
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
        special_tokens=[(cls, tokenizer.cls_token_id), (sep, tokenizer.sep_token_id)])
    return tokenizer


class ClassificationDataModule(TokenizedSplitsDataModule):
    """Sentence (or sentence-pair) classification data from any source with `load(split)`.

    Every split is checked before anything is tokenized (columns exist, text is text, labels are in the
    label set, no split is empty); tokenized splits are cached under a fingerprint like pretraining data.
    """

    def __init__(
        self,
        source,
        text_column: str = "text",
        text_pair_column: str | None = None,
        label_column: str = "label",
        labels: list[str] | None = None,
        splits: tuple[str, ...] = ("train", "validation"),
        tokenizer: str | None = None,
        init_from: str | None = None,
        vocab_size: int = 8192,
        max_length: int = 128,
        max_documents: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str = "outputs/.cache",
    ):
        super().__init__(splits, max_documents, tokenizer, init_from, vocab_size, batch_size, eval_batch_size,
                         num_workers, cache_dir)
        self.source = source
        self.text_column, self.text_pair_column, self.label_column = text_column, text_pair_column, label_column
        self.declared_labels = list(labels) if labels else None
        self.max_length = max_length

    # --- raw splits, checked -----------------------------------------------------------------------
    def raw(self, split: str):
        """The split as loaded from the source, cut to `max_documents` (a fixed random subset)."""
        return self.cut(self.source.load(split))

    @cached_property
    def raw_splits(self) -> dict:
        splits = {split: self.raw(split) for split in self.splits}
        for split, dataset in splits.items():
            self._check(split, dataset)
        return splits

    def _check(self, split: str, dataset) -> None:
        columns = dataset.column_names
        for key in ("text_column", "text_pair_column", "label_column"):
            column = getattr(self, key)
            if column is not None and column not in columns:
                raise LmlabError(f"data.{key}={column!r} is not a column of the {split} split; columns: {columns}")
        if len(dataset) == 0:
            raise LmlabError(f"the {split} split of data.source is empty")
        for key in ("text_column", "text_pair_column"):
            column = getattr(self, key)
            dtype = getattr(dataset.features[column], "dtype", None) if column else "string"
            if dtype not in ("string", "large_string"):
                raise LmlabError(f"data.{key}={column!r} of the {split} split holds {dtype} values, not text")

    @cached_property
    def labels(self) -> list[str]:
        """Label names in id order: data.labels, else what the source declares, else inferred from the splits."""
        if self.declared_labels:
            return self.declared_labels
        declared = self.source.label_names()
        return declared if declared is not None else label_names_of(list(self.raw_splits.values()), self.label_column)

    def module_kwargs(self) -> dict:
        """What the LightningModule needs from the data: the label names (checked against every split)."""
        for split, dataset in self.raw_splits.items():
            self._label_ids(split, dataset)
        return {"labels": self.labels}

    def _label_ids(self, split: str, dataset) -> list[int]:
        feature = dataset.features[self.label_column]
        return encode_labels(dataset[self.label_column], self.labels, getattr(feature, "names", None), split,
                             self.label_column)

    # --- tokenizer -----------------------------------------------------------------------------------
    def bpe_texts(self):
        train = self.raw_splits["train"] if "train" in self.splits else self.raw("train")  # lmlab-eval: one split
        return iter(train[self.text_column])

    def bpe_key(self) -> dict:
        return {"source": self.source.fingerprint(), "column": self.text_column}

    def prepared(self, tokenizer):
        return ensure_cls_sep(tokenizer)

    # --- tokenized splits, cached ------------------------------------------------------------------------
    def tokenize(self, batch: dict) -> dict:
        texts = [batch[self.text_column]]
        if self.text_pair_column:
            texts.append(batch[self.text_pair_column])
        return self.tokenizer(*texts, truncation=True, max_length=self.max_length)

    @cached_property
    def tokenizer_fingerprint(self) -> str:
        # taken once: calling the tokenizer with truncation changes its serialized state (and so its hash)
        return tokenizer_fingerprint(self.tokenizer)

    def _tokenized(self, split: str) -> Path:
        key = fingerprint(source=self.source.fingerprint(), split=split, tokenizer=self.tokenizer_fingerprint,
                          columns=[self.text_column, self.text_pair_column, self.label_column], labels=self.labels,
                          max_length=self.max_length, max_documents=self.max_documents)

        def build(tmp: Path) -> None:
            raw = self.raw_splits[split]
            encoded = raw.map(self.tokenize, batched=True, remove_columns=raw.column_names)
            encoded = encoded.add_column("labels", self._label_ids(split, raw))
            encoded.save_to_disk(str(tmp))

        return cached_dir(self.cache_dir / "classification", key, build, f"tokenized {split} split")

    def collator(self):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(self.tokenizer)  # pads each batch to its own longest example
