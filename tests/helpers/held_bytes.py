"""A callback that records, per rank, the bytes of parameters and optimizer state that rank holds."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
from torch.distributed.tensor import DTensor


def local_bytes(tensor: torch.Tensor) -> int:
    """Bytes of the part of `tensor` this rank stores (its shard, for a sharded DTensor)."""
    local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
    return local.numel() * local.element_size()


class HeldBytes(L.Callback):
    """After the first optimizer step, writes `<dirpath>/held-<rank>.json`: the rank's parameter and optimizer
    bytes, and the whole model's parameter bytes; the same of DPO's reference (`reference.*`) alone."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.global_step != 1:
            return
        params = list(pl_module.parameters())
        state = [t for s in trainer.optimizers[0].state.values() for t in s.values()
                 if isinstance(t, torch.Tensor) and t.ndim > 0]
        reference = [p for name, p in pl_module.named_parameters() if name.startswith("reference.")]
        held = {"params": sum(local_bytes(p) for p in params), "optimizer": sum(local_bytes(t) for t in state),
                "model_params": sum(p.numel() * p.element_size() for p in params),
                "sharded": sum(isinstance(p, DTensor) for p in params), "count": len(params),
                "reference": sum(local_bytes(p) for p in reference),  # DPO's frozen copy, when it has one
                "reference_params": sum(p.numel() * p.element_size() for p in reference),
                "reference_sharded": sum(isinstance(p, DTensor) for p in reference), "reference_count": len(reference)}
        self.dirpath.mkdir(parents=True, exist_ok=True)
        (self.dirpath / f"held-{trainer.global_rank}.json").write_text(json.dumps(held))
