"""`LoraCheckpoints`: what a checkpoint of a LoRA model (`peft=lora`) keeps, and the check when a resume loads one.

A pretrained base is frozen and loaded again from `model.pretrained`, so its checkpoints keep only the trainable
parameters (the adapter, a classifier's fresh head, new token rows) and stay small. A base built from a config
(random initialisation) stays in the checkpoint: nothing else could rebuild it. Such checkpoints load
non-strictly (`HFModelModule` sets `strict_loading=False` under peft), so every trainable parameter must be in
the one loaded. `lmlab-train` adds this callback when `peft` is set; `lmlab.checkpoint.reader.load_module`
makes the same check for the commands that load a checkpoint outside a Trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from lmlab.errors import LmlabError


def trainable_state_dict(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of `state_dict` that are trainable parameters of `module` (what a LoRA checkpoint keeps)."""
    names = {name for name, p in module.named_parameters() if p.requires_grad}
    return {k: v for k, v in state_dict.items() if k in names}


def check_trainable_loaded(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """A LoRA checkpoint loads non-strictly (the frozen base is not in it): every trainable one must be."""
    missing = [name for name, p in module.named_parameters() if p.requires_grad and name not in state_dict]
    if missing:
        raise LmlabError(f"{where} lacks {len(missing)} trainable parameters of this model (e.g. {missing[0]}); "
                         "was it written with the same peft settings?")


class LoraCheckpoints(L.Callback):
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if pl_module.hparams.model.get("pretrained"):
            checkpoint["state_dict"] = trainable_state_dict(pl_module, checkpoint["state_dict"])

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        check_trainable_loaded(pl_module, checkpoint["state_dict"], "the checkpoint")
