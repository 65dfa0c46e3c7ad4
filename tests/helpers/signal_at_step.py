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


class SigkillAt(L.Callback):
    """SIGKILL at one moment of global step `step`'s life: `mid-step` (between backward and the optimizer
    step), `after-checkpoint` (the step's checkpoint on disk, nothing of the step logged, no validation yet),
    `during-checkpoint` (the checkpoint being gathered, its file not in place), `during-validation` (after
    its first batch), `after-validation` (its metrics logged)."""

    def __init__(self, step: int, moment: str):
        self.step, self.moment = step, moment

    def _kill(self, trainer: L.Trainer, moment: str, offset: int = 0) -> None:
        if self.moment == moment and trainer.global_step == self.step - offset and not trainer.sanity_checking:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_before_optimizer_step(self, trainer: L.Trainer, *args) -> None:
        self._kill(trainer, "mid-step", offset=1)  # global_step counts the steps done: this is step `step`

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        self._kill(trainer, "after-checkpoint")  # callbacks run in order: this one after the checkpoint's

    def on_save_checkpoint(self, trainer: L.Trainer, *args) -> None:
        self._kill(trainer, "during-checkpoint")

    def on_validation_batch_end(self, trainer: L.Trainer, *args) -> None:
        self._kill(trainer, "during-validation")

    def on_validation_end(self, trainer: L.Trainer, *args) -> None:
        self._kill(trainer, "after-validation")
