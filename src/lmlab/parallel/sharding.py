"""Whether a model is sharded: the callbacks that run the model outside the training step ask it."""

from __future__ import annotations


def is_sharded(model) -> bool:
    """Whether FSDP2 (`fully_shard`) holds the model's parameters as shards: a forward then all-gathers them, so
    every rank must run it, and rank 0 alone holds no whole weight."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)
