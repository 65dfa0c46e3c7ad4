"""`LoraCheckpoints`: what a checkpoint of a LoRA model (`peft=lora`) keeps, and the check when a resume loads one.

A pretrained base is frozen and loaded again from `model.pretrained`, so its checkpoints keep only the trainable
parameters (the adapter, a classifier's fresh head, new token rows) and stay small. A base built from a config
(random initialisation) stays in the checkpoint: nothing else could rebuild it. Such checkpoints load
non-strictly (`HFModelModule` sets `strict_loading=False` under peft), so every trainable parameter must be in
the one loaded. `lmlab-train` adds this callback when `peft` is set; `lmlab.runs.checkpoint_load.load_module`
makes the same check for the commands that load a checkpoint outside a Trainer.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from lmlab.models.lora import check_trainable_loaded, trainable_state_dict


class LoraCheckpoints(L.Callback):
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if pl_module.hparams.model.get("pretrained"):
            checkpoint["state_dict"] = trainable_state_dict(pl_module, checkpoint["state_dict"])

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        check_trainable_loaded(pl_module, checkpoint["state_dict"], "the checkpoint")
