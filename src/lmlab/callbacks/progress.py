"""A Rich progress bar that costs the training loop nothing: few redraws, metrics read only when a log is due."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Lightning's `RichProgressBar`, redrawn `refresh_rate` times a second (Lightning's default, 100, costs
    5-11% of a CPU core in its redraw thread: measurable on a 2-core machine) and refreshing its metrics
    every `trainer.log_every_n_steps` steps: reading a logged tensor (`.item()`) waits for the device to
    finish the step, and that host sync stops the CPU from queuing the next step's work meanwhile.
    """

    _shown: dict | None = None

    def __init__(self, refresh_rate: int = 4, **kwargs):
        super().__init__(refresh_rate=refresh_rate, **kwargs)

    def get_metrics(self, trainer, pl_module):
        due = not trainer.training or trainer.global_step % max(trainer.log_every_n_steps, 1) == 0
        if due or self._shown is None:
            self._shown = super().get_metrics(trainer, pl_module)
        return self._shown

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning prints "Epoch 0/-2" when max_epochs=-1 (training bounded by max_steps only)
        if self.trainer.max_epochs is not None and self.trainer.max_epochs >= 0:
            return super()._get_train_description(current_epoch)
        return f"{f'Epoch {current_epoch}':{len(self.validation_description)}}"
