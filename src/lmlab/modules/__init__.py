"""LightningModules, one per training objective.

Names are imported on first use: the objectives' config checks (`lmlab.modules.config_checks`) run before
training and must not pull in torch and Lightning.
"""

from importlib import import_module

_MODULES = {
    "CausalLMModule": "causal_lm", "DPOModule": "dpo", "MaskedLMModule": "masked_lm", "RewardModule": "reward",
    "SequenceClassificationModule": "classification", "SFTModule": "sft",
}
__all__ = sorted(_MODULES)


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
