"""`RunGuard`: the callback lmlab adds to every training run for the run directory's sake.

- A run resumed from a finished one (`resume=force`, `ckpt_path=`) stops being "finished" only when it
  really starts training, so a launch that fails before (an empty corpus) leaves `finished.json` alone.
- A loss that turns NaN/inf stops the run with a clear error; its last good checkpoint is kept (the
  checkpoint writer also refuses non-finite weights). The check reads the device only every
  `log_every_n_steps` steps: no host sync per step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lmlab.checkpoint.resume import FINISHED_MARKER
from lmlab.errors import LmlabError


class RunGuard(L.Callback):
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._bad: torch.Tensor | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        marker = self.run_dir / FINISHED_MARKER
        if trainer.is_global_zero and marker.is_file():
            marker.rename(self.run_dir / f"finished-{int(time.time())}.json")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        bad = ~torch.isfinite(loss.detach())
        self._bad = bad if self._bad is None else self._bad | bad
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0 and bool(self._bad):
            raise LmlabError(f"train/loss is NaN or inf by step {trainer.global_step}: training diverged and "
                             "was stopped (the last good checkpoint is kept; lower optimizer.lr or resume from it)")
