"""`DataPosition`: where training stands in global samples, in every checkpoint, and Lightning's loop counters
rescaled for this launch's processes on resume (`lmlab.checkpoint.position`). Always on: `lmlab-train` adds it
beside the configured callbacks, since exact resume depends on it."""

from __future__ import annotations

from typing import Any

import lightning as L

from lmlab.checkpoint.position import restore_position, save_position


class DataPosition(L.Callback):
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        save_position(trainer, checkpoint)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # called before Lightning restores its loops from the same dict
        restore_position(trainer, checkpoint)
