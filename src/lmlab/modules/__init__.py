"""LightningModules, one per training objective."""

from lmlab.modules.causal_lm import CausalLMModule
from lmlab.modules.classification import SequenceClassificationModule
from lmlab.modules.masked_lm import MaskedLMModule
from lmlab.modules.sft import SFTModule

__all__ = ["CausalLMModule", "MaskedLMModule", "SequenceClassificationModule", "SFTModule"]
