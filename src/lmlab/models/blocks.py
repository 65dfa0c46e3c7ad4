"""The repeated blocks of a transformers model: the unit of FSDP sharding and of activation checkpointing.

Found from the model itself, so every architecture lmlab builds or loads (GPT-2, Llama, BERT, RoBERTa,
Mistral, Qwen2, ...) works without naming its block class in a config: a model's `_no_split_modules` lists
the classes that must never be split across devices, which are its blocks (and, for some, its embeddings).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer

from lmlab.errors import LmlabError
from lmlab.models.options import ACTIVATION_CHECKPOINTING


def transformer_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules of `model` whose class its transformers models name in `_no_split_modules`, outermost first.

    The class or one it derives from: FSDP2's `fully_shard` gives each module it shards a subclass of its own
    (`FSDPGPT2Block`), and optimizer=muon looks for the blocks after sharding."""
    names = {name for module in model.modules() if isinstance(module, PreTrainedModel)
             for name in (module._no_split_modules or [])}
    blocks = [module for module in model.modules() if any(cls.__name__ in names for cls in type(module).__mro__)]
    if not blocks:
        raise LmlabError(f"the model ({type(model).__name__}) names no block class in `_no_split_modules`: "
                         "it cannot be sharded per block")
    return blocks


def apply_activation_checkpointing(model: torch.nn.Module, mode: str = "none", every: int = 2) -> int:
    """Recompute blocks' activations in the backward instead of keeping them: `full` every block,
    `selective` one block of every `every` (the 1st, the (every+1)-th, ...), as torchtitan's per-block modes.

    transformers' own mechanism (its layers checkpoint `forward`, so FSDP's hooks stay outside the
    recomputation), non-reentrant: the same gradients, under torch.compile too. Returns how many blocks
    recompute.
    """
    if mode not in ACTIVATION_CHECKPOINTING:
        raise LmlabError(f"model.activation_checkpointing={mode!r} must be one of "
                         f"{', '.join(ACTIVATION_CHECKPOINTING)}")
    if mode == "none":
        return 0
    if mode == "selective" and every < 1:
        raise LmlabError(f"model.activation_checkpointing_every={every} must be a positive integer")
    root = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)
    if root is None or not root.supports_gradient_checkpointing:
        raise LmlabError(f"model.activation_checkpointing={mode}: the model ({type(model).__name__}) does not "
                         "support activation checkpointing")
    root.activation_checkpointing_enable({"use_reentrant": False}, every_n_layers=1 if mode == "full" else every)
    return sum(m.gradient_checkpointing for m in model.modules() if isinstance(m, GradientCheckpointingLayer))
