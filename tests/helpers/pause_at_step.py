"""A callback that holds training at a chosen step until a file appears: a run caught at a known point.

While it waits, `<path>.waiting` exists (everything of the step before, checkpoints included, is written)."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L


class WaitForFile(L.Callback):
    def __init__(self, step: int, path: str, timeout: float = 600):
        self.step, self.path, self.timeout = step, Path(path), timeout

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            deadline = time.monotonic() + self.timeout
            self.path.with_name(self.path.name + ".waiting").touch()
            while not self.path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
