"""The training loss of an optimizer step over its whole global batch, whatever the number of processes.

Lightning logs what `training_step` logs on the micro-batch that ends an accumulation, on rank 0: a share
of the batch that depends on how it was split. `StepLoss` sums every micro-batch's loss (weighted by its
tokens or examples) on every process and reduces the sums across processes once per optimizer step, with
an all-reduce and no host sync, so 1 process x 8 samples and 2 x 4 log the same number.
"""

from __future__ import annotations

import torch


def ends_optimizer_step(trainer, batch_idx: int) -> bool:
    """Whether this micro-batch is the last of its gradient accumulation (as Lightning decides it)."""
    return (batch_idx + 1) % trainer.accumulate_grad_batches == 0 or batch_idx + 1 == trainer.num_training_batches


class StepLoss:
    """Accumulates a step's weighted loss over its micro-batches; `mean` reduces it over processes and resets."""

    def __init__(self) -> None:
        self._sums: torch.Tensor | None = None  # [weighted loss, weight]

    def update(self, loss: torch.Tensor, weight: int | torch.Tensor) -> None:
        weight = torch.as_tensor(weight, dtype=torch.float64, device=loss.device)
        sums = torch.stack([loss.detach().to(torch.float64) * weight, weight])
        self._sums = sums if self._sums is None else self._sums + sums

    def mean(self, strategy) -> torch.Tensor:
        """The step's loss over every process's micro-batches (a float32 scalar); starts the next step."""
        sums, self._sums = self._sums, None
        sums = strategy.reduce(sums, reduce_op="sum")
        return (sums[0] / sums[1]).to(torch.float32)


def log_step_loss(module, step_loss: StepLoss, loss: torch.Tensor, weight: int | torch.Tensor, batch_idx: int,
                  perplexity: bool = False) -> None:
    """Add this micro-batch to the step's loss; on the step's last one log `train/loss` (and `train/ppl`)."""
    step_loss.update(loss, weight)
    if not ends_optimizer_step(module.trainer, batch_idx):
        return
    mean = step_loss.mean(module.trainer.strategy)
    module.log("train/loss", mean, prog_bar=True)
    if perplexity:
        module.log("train/ppl", mean.exp())
