"""The figures a sweep is judged by, per run: best and final monitored metric, steps, tokens seen, wall time,
and this launch's start-up: seconds from the process's start to its first optimizer step, and what it compiled."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from lmlab.utils.startup import seconds_since_process_start

log = logging.getLogger(__name__)


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
        self.time_to_first_step: float | None = None  # this launch's (a resumed run's is its own)
        self._started = time.perf_counter()
        self._first_step = 0

    def wall_time(self) -> float:
        return self.seconds_before + time.perf_counter() - self._started

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        self._first_step = trainer.global_step + 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        self.tokens_seen += batch["input_ids"].numel() * trainer.world_size
        if self.time_to_first_step is None and trainer.global_step >= self._first_step:
            if pl_module.device.type == "cuda":  # once: the step's kernels have run, not only been queued
                import torch

                torch.cuda.synchronize(pl_module.device)
            self.time_to_first_step = seconds_since_process_start()
            if trainer.is_global_zero:
                log.info("First optimizer step %.1f s after the process started", self.time_to_first_step)

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
            "time_to_first_step_s": None if self.time_to_first_step is None else round(self.time_to_first_step, 2),
        }
        if pl_module.hparams.get("model", {}).get("compile"):  # how much this launch compiled, how much it loaded
            from lmlab.models.compile import compile_counts

            summary["compile"] = compile_counts()
        for callback in trainer.callbacks:
            if isinstance(callback, SummaryContributor):
                summary.update(callback.summary_figures())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(summary, indent=2) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.summary.update({f"best/{self.monitor}": self.best, "tokens_seen": self.tokens_seen,
                                                  "wall_time_s": wall_time, "global_step": trainer.global_step,
                                                  "time_to_first_step_s": self.time_to_first_step})

    def state_dict(self) -> dict[str, Any]:
        return {"tokens_seen": self.tokens_seen, "seconds": self.wall_time(), "best": self.best,
                "best_step": self.best_step, "final": self.final}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.tokens_seen = state_dict["tokens_seen"]
        self.seconds_before = state_dict["seconds"]
        self.best, self.best_step, self.final = state_dict["best"], state_dict["best_step"], state_dict["final"]
