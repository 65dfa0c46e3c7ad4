"""LightningModules, one per training objective."""

from lmlab.modules.causal_lm import CausalLMModule

__all__ = ["CausalLMModule"]
