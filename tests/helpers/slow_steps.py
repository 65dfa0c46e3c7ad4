"""A callback that makes every training step last at least `seconds`: a run longer than a short time limit."""

from __future__ import annotations

import time

import lightning as L


class SlowSteps(L.Callback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_train_batch_end(self, *args) -> None:
        time.sleep(self.seconds)
