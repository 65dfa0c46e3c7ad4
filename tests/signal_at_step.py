"""A callback that sends its own process SIGTERM during a chosen training step: preemption at a known point."""

from __future__ import annotations

import os
import signal

import lightning as L


class SigtermDuringStep(L.Callback):
    def __init__(self, step: int):
        self.step = step  # the global step the signal arrives in (the step that ends at `step`)

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step - 1:
            os.kill(os.getpid(), signal.SIGTERM)
