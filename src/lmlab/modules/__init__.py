"""LightningModules, one per training objective.

Names are imported on first use: the objectives' config checks (`lmlab.modules.config_checks`) run before
training and must not pull in torch and Lightning.
"""

from lmlab.utils.lazy_names import lazy_names

_MODULES = {
    "CausalLMModule": "causal_lm", "DPOModule": "dpo", "MaskedLMModule": "masked_lm", "RewardModule": "reward",
    "SequenceClassificationModule": "classification", "SFTModule": "sft",
}
__all__ = sorted(_MODULES)

__getattr__ = lazy_names(__name__, _MODULES)
