"""Data: text sources, tokenizers, the packed-token cache and the LightningDataModules."""

from lmlab.data.pretrain import PretrainDataModule
from lmlab.data.sources import HubDataset, StdlibCorpus, TextFiles

__all__ = ["HubDataset", "PretrainDataModule", "StdlibCorpus", "TextFiles"]
