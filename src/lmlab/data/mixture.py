"""`MixtureDataModule`: each source tokenized into its own cache entry, mixed by weight (`mixed_blocks`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset

from lmlab.data.mixed_blocks import MixedBlocks, SourceMixture, check_sources
from lmlab.data.packing import PackedBlocks
from lmlab.data.pretrain import PretrainDataModule
from lmlab.data.sources import SPLITS


class MixtureDataModule(PretrainDataModule):
    """Pretraining on named sources mixed by weight, e.g. `data=mixture` with
    `sources: {code: {weight: 0.75, source: {...}}, web: {weight: 0.25, source: {...}}}`.

    Each source's splits are cached as a single-source run would cache them (and shared with it); the
    validation split is every source's validation blocks, unweighted. `samples_per_epoch` (default: the
    sources' blocks together) is the length of one shuffled pass over the mixture.
    """

    def __init__(self, sources: Mapping[str, Mapping[str, Any]], samples_per_epoch: int | None = None, **kwargs):
        check_sources(sources, samples_per_epoch)
        self.names = list(sources)
        self.weights = [float(spec["weight"]) for spec in sources.values()]
        self.samples_per_epoch = samples_per_epoch
        super().__init__(source=SourceMixture({name: spec["source"] for name, spec in sources.items()}), **kwargs)
        self.sampler = None

    def _packed_sources(self, split: str) -> list[PackedBlocks]:
        return [PackedBlocks(self.packed(split, source, name)) for name, source in self.source.sources.items()]

    def prepare_data(self) -> None:
        for split in SPLITS:
            for name, source in self.source.sources.items():
                self.packed(split, source, name)

    def setup(self, stage: str | None = None) -> None:
        if "train" not in self.datasets:
            train = self._packed_sources("train")
            self.datasets["train"] = MixedBlocks(train, self.weights,
                                                 self.samples_per_epoch or sum(map(len, train)))
        if "validation" not in self.datasets:
            self.datasets["validation"] = ConcatDataset(self._packed_sources("validation"))

    def train_dataloader(self):
        loader = super().train_dataloader()
        self.sampler = loader.sampler
        return loader

    def tokens_of_step(self, step: int) -> np.ndarray:
        """Tokens each source gives to optimizer step `step` (all processes together), by source."""
        sources = self.datasets["train"].source_of(self.sampler.step_samples(step))
        return np.bincount(sources.numpy(), minlength=len(self.names)) * self.block_size
