"""LightningModules, one per training objective."""

from lmlab.modules.causal_lm import CausalLMModule
from lmlab.modules.classification import SequenceClassificationModule
from lmlab.modules.dpo import DPOModule
from lmlab.modules.masked_lm import MaskedLMModule
from lmlab.modules.reward import RewardModule
from lmlab.modules.sft import SFTModule

__all__ = ["CausalLMModule", "DPOModule", "MaskedLMModule", "RewardModule", "SequenceClassificationModule",
           "SFTModule"]
