"""`last.ckpt` every N steps *and* at the end of training, so it always holds the final weights."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lmlab.tracking.metrics import log_step_row_now


class LastCheckpoint(ModelCheckpoint):
    """Lightning's `ModelCheckpoint` (every `every_n_train_steps`: the step checkpoints and `last.ckpt`),
    plus one more save when training ends between two of those steps: otherwise a 171-step run's `last.ckpt`
    is step 100, and evaluating "the last checkpoint" scores weights 71 steps old without a hint.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        log_step_row_now(trainer)  # a kill right after the checkpoint's rename must not lose the step's row
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if trainer.sanity_checking or self._last_global_step_saved == trainer.global_step:
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
