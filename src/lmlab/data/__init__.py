"""Data: text sources, tokenizers, the packed-token cache and the LightningDataModules.

Names are imported on first use: a data source (`lmlab.data.TextFiles`) checked before training must not
pull in Lightning with the data modules.
"""

from lmlab.utils.lazy_names import lazy_names

_MODULES = {
    "ClassificationDataModule": "classification", "HubSplits": "classification_sources",
    "LocalSplits": "classification_sources", "MixtureDataModule": "mixture", "PretrainDataModule": "pretrain",
    "PreferenceDataModule": "preference", "RemoteDataModule": "remote_module",
    "SFTDataModule": "sft", "HubDataset": "sources", "StdlibCorpus": "sources", "TextFiles": "sources",
    "StdlibFunctions": "stdlib_functions", "SyntheticInstructions": "synthetic_instructions",
    "SyntheticPreferences": "synthetic_preferences",
}
__all__ = sorted(_MODULES)

__getattr__ = lazy_names(__name__, _MODULES)
