"""The figures a sweep is judged by, per run: best and final monitored metric, steps, tokens seen, wall time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import lightning as L
from lightning.pytorch.loggers import WandbLogger


@runtime_checkable
class SummaryContributor(Protocol):
    """A callback with figures of its own for `summary.json` (e.g. a data mixture's realised shares)."""

    def summary_figures(self) -> dict[str, Any]: ...


class RunSummary(L.Callback):
    """Writes `<run dir>/summary.json` at the end of training and puts the same figures in the W&B summary.

    Tokens seen and training time are kept in checkpoints, so a resumed run goes on counting them.
    """

    def __init__(self, path: str, monitor: str, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}: expected 'min' or 'max'")
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.tokens_seen = 0
        self.seconds_before = 0.0  # training time of earlier (resumed-from) sessions
        self.best: float | None = None
        self.best_step: int | None = None
        self.final: float | None = None
        self._started = time.perf_counter()

    def wall_time(self) -> float:
        return self.seconds_before + time.perf_counter() - self._started

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        self.tokens_seen += batch["input_ids"].numel() * trainer.world_size

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        self.final = float(value)
        if self.best is None or (self.final < self.best if self.mode == "min" else self.final > self.best):
            self.best, self.best_step = self.final, trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        wall_time = self.wall_time()
        summary = {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_step": self.best_step,
            "final": self.final,
            "global_step": trainer.global_step,
            "tokens_seen": self.tokens_seen,
            "wall_time_s": round(wall_time, 3),
            "tokens_per_sec": round(self.tokens_seen / wall_time, 1) if wall_time > 0 else None,
        }
        for callback in trainer.callbacks:
            if isinstance(callback, SummaryContributor):
                summary.update(callback.summary_figures())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(summary, indent=2) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.summary.update({f"best/{self.monitor}": self.best, "tokens_seen": self.tokens_seen,
                                                  "wall_time_s": wall_time, "global_step": trainer.global_step})

    def state_dict(self) -> dict[str, Any]:
        return {"tokens_seen": self.tokens_seen, "seconds": self.wall_time(), "best": self.best,
                "best_step": self.best_step, "final": self.final}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.tokens_seen = state_dict["tokens_seen"]
        self.seconds_before = state_dict["seconds"]
        self.best, self.best_step, self.final = state_dict["best"], state_dict["best_step"], state_dict["final"]
