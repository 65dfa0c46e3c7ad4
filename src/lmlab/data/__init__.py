"""Data: text sources, tokenizers, the packed-token cache and the LightningDataModules."""

from lmlab.data.classification import ClassificationDataModule
from lmlab.data.classification_sources import HubSplits, LocalSplits
from lmlab.data.mixture import MixtureDataModule
from lmlab.data.pretrain import PretrainDataModule
from lmlab.data.remote_module import RemoteDataModule
from lmlab.data.sft import SFTDataModule
from lmlab.data.sources import HubDataset, StdlibCorpus, TextFiles
from lmlab.data.stdlib_functions import StdlibFunctions
from lmlab.data.synthetic_instructions import SyntheticInstructions

__all__ = ["ClassificationDataModule", "HubDataset", "HubSplits", "LocalSplits", "MixtureDataModule",
           "PretrainDataModule", "RemoteDataModule", "SFTDataModule", "StdlibCorpus", "StdlibFunctions",
           "SyntheticInstructions", "TextFiles"]
