"""Weighted mixtures of pretraining sources, mixed by index: the dataset, its sources' documents, the checks.

A mixture is one map-style dataset whose index range is cut into one slice per source, sized by the
weights; `GlobalOrderSampler` shuffles it like any dataset, so the training order stays a function of
(seed, step) and exact and elastic resume work unchanged. Over any stretch of training a source's share
of samples follows the hypergeometric law around its weight (tighter than independent draws).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from lmlab.contracts import TextSource
from lmlab.data.cache import fingerprint
from lmlab.data.cutting import Document
from lmlab.errors import LmlabError


def slot_counts(weights: list[float], total: int) -> list[int]:
    """`total` samples shared out in proportion to `weights` (largest remainders), at least one per source."""
    shares = [w / sum(weights) * total for w in weights]
    counts = [max(1, math.floor(s)) for s in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - shares[i])
    for i in itertools.islice(itertools.cycle(by_remainder), max(0, total - sum(counts))):
        counts[i] += 1
    return counts


class MixedBlocks(Dataset):
    """`num_samples` samples, source `s` taking a slice of them in proportion to its weight; within its
    slice, sample `k` is block `k * n_s // slots_s` of the source: a source with fewer blocks than slots
    repeats each (upsampled), one with more is read at evenly spaced blocks (downsampled)."""

    def __init__(self, sources: list[Dataset], weights: list[float], num_samples: int):
        self.sources = sources
        self.slots = slot_counts(weights, num_samples)
        self.first_slot = [0, *itertools.accumulate(self.slots)]

    def __len__(self) -> int:
        return self.first_slot[-1]

    def source_of(self, indices: torch.Tensor) -> torch.Tensor:
        """Which source each sample index reads from."""
        return torch.searchsorted(torch.tensor(self.first_slot[1:]), indices, right=True)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        source = bisect.bisect_right(self.first_slot, index) - 1
        k = index - self.first_slot[source]
        return self.sources[source][k * len(self.sources[source]) // self.slots[source]]


@dataclass
class SourceMixture(TextSource):
    """The documents of every source, interleaved one by one: what a tokenizer trained here learns from."""

    sources: Mapping[str, Any]

    def fingerprint(self) -> str:
        return fingerprint(**{name: source.fingerprint() for name, source in self.sources.items()})

    def size_hint(self, split: str) -> int | None:
        hints = [source.size_hint(split) for source in self.sources.values()]
        return None if None in hints else sum(hints)

    def documents(self, split: str) -> Iterator[Document]:
        streams = [source.documents(split) for source in self.sources.values()]
        for documents in itertools.zip_longest(*streams):
            yield from (document for document in documents if document is not None)


def check_sources(sources: Mapping[str, Mapping[str, Any]], samples_per_epoch: int | None = None) -> None:
    """Every source named, weighted by a positive number and given a source (before anything is built)."""
    if not sources:
        raise LmlabError("data.sources is empty: name at least one source with a weight and a source")
    for name, spec in sources.items():
        weight = spec.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise LmlabError(f"data.sources.{name}.weight={weight!r} must be a positive number")
        if spec.get("source") is None:
            raise LmlabError(f"data.sources.{name}.source is missing: give it a pretraining source")
    if samples_per_epoch is not None and samples_per_epoch < len(sources):
        raise LmlabError(f"data.samples_per_epoch={samples_per_epoch} must be at least one per source "
                         f"({len(sources)}), or null")
