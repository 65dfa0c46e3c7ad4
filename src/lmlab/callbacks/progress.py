"""A Rich progress bar that reads the logged metrics only when a log is due."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Lightning's `RichProgressBar`, refreshing its metrics every `trainer.log_every_n_steps` steps.

    Reading a logged tensor (`.item()`) waits for the device to finish the step: per step, that host
    sync stops the CPU from queuing the next step's work while the GPU runs this one.
    """

    _shown: dict | None = None

    def get_metrics(self, trainer, pl_module):
        due = not trainer.training or trainer.global_step % max(trainer.log_every_n_steps, 1) == 0
        if due or self._shown is None:
            self._shown = super().get_metrics(trainer, pl_module)
        return self._shown
