"""Every piece of state an lmlab checkpoint holds, listed in one place; always on, whatever `callbacks` says.

| state | written and restored by |
|---|---|
| model weights, optimizer state, LR scheduler | Lightning (`state_dict`, `optimizer_states`, `lr_schedulers`) |
| loop counters (global step, batches seen) | Lightning's fit loop (read by `position.py`) |
| the schedule's length (`schedule_steps`) | `lmlab.modules.base.HFModelModule.on_save_checkpoint` |
| the data position (exact and elastic resume) | `data_position.py:DataPosition` |
| every rank's RNG states | `rng_state.py:RNGStateCheckpoint` |
| the run's config and tokenizer (load anywhere) | `run_description.py:RunDescription` |
| tokens seen per mixture source | `lmlab.data.mixture_tokens.MixtureTokens` (its `state_dict`) |
| only the trainable parameters under `peft` | `lora.py:LoraCheckpoints` |

`lmlab-train` adds `checkpoint_callbacks(cfg)` beside the configured callbacks, so deleting a YAML entry can
never make a resume inexact.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig


def checkpoint_callbacks(cfg: DictConfig) -> list[Any]:
    """The callbacks that put the state above (beyond Lightning's own) into each checkpoint and back."""
    from lmlab.checkpoint.data_position import DataPosition
    from lmlab.checkpoint.lora import LoraCheckpoints
    from lmlab.checkpoint.rng_state import RNGStateCheckpoint
    from lmlab.checkpoint.run_description import RunDescription
    from lmlab.data.mixture_tokens import MixtureTokens
    from lmlab.utils.provenance import resolved_config

    callbacks = [DataPosition(), RNGStateCheckpoint(), RunDescription(resolved_config(cfg)), MixtureTokens()]
    if cfg.get("peft"):
        callbacks.append(LoraCheckpoints())  # adapter-only checkpoints of a pretrained base
    return callbacks
