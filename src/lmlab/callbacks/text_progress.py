"""Progress as plain log lines, for output that is not a terminal (a batch job's log, `| tee`)."""

from __future__ import annotations

import datetime
import logging
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import ProgressBar as ProgressBarBase

log = logging.getLogger("lmlab")


class TextProgress(ProgressBarBase):
    """One line per `trainer.log_every_n_steps` optimizer steps (step, epoch, loss, lr, it/s, ETA) and one
    per validation (its metrics). A redrawn bar in a file shows nothing until the end, then one frame."""

    def __init__(self):
        super().__init__()
        self._enabled = True
        self._last_step = -1
        self._started = time.perf_counter()
        self._first_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started, self._first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        step = trainer.global_step
        if not self._enabled or step == self._last_step or step % max(trainer.log_every_n_steps, 1):
            return
        self._last_step = step
        total = trainer.max_steps if trainer.max_steps > 0 else int(trainer.estimated_stepping_batches)
        rate = (step - self._first_step) / max(time.perf_counter() - self._started, 1e-9)
        eta = datetime.timedelta(seconds=round((total - step) / rate)) if rate > 0 else "?"
        loss = trainer.callback_metrics.get("train/loss")
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        log.info("step %d/%d  epoch %d  loss %s  lr %.3g  %.2f it/s  ETA %s", step, total, trainer.current_epoch,
                 "—" if loss is None else f"{float(loss):.4f}", lr, rate, eta)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._enabled or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("val/") and k.count("/") == 1}  # per-class F1 (val/f1/<label>) stays in the CSV
        log.info("validation at step %d (epoch %d): %s", trainer.global_step, trainer.current_epoch,
                 "  ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())))


def progress_bar(refresh_rate: int = 4, enabled: bool = True) -> ProgressBarBase | None:
    """lmlab's Rich progress bar on a terminal, plain lines (`TextProgress`) otherwise; None when
    `trainer.enable_progress_bar=false` (Lightning refuses any progress callback then)."""
    if not enabled:
        return None
    if sys.stdout.isatty():
        from lmlab.callbacks.progress import ProgressBar

        return ProgressBar(refresh_rate=refresh_rate)
    return TextProgress()
