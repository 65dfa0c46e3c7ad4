"""Callbacks that signal their own process at a chosen training step: preemption and kills at known points."""

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


class SigkillAfterStep(L.Callback):
    """SIGKILL when the batch after global step `step` starts: that step's checkpoint (written at its end,
    and any validation after it) is on disk, nothing later is."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
