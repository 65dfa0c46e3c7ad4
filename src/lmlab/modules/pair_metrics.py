"""Means over preference pairs of a whole optimizer step or validation, whatever the number of processes.

TRL logs each preference metric (`rewards/chosen`, `rewards/accuracies`, ...) as its mean over the pairs of a
batch. `PairSums` keeps each metric's sum and the pair count over micro-batches and reduces them across
processes once (an all-reduce of one vector, as `lmlab.modules.step_loss` does for the loss), so 1 process x 8
pairs and 2 x 4 log the same numbers.
"""

from __future__ import annotations

import torch


class PairSums:
    """Per-pair values summed over batches; `means` reduces the sums over processes, divides and resets."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._sums: torch.Tensor | None = None  # [sum of each metric..., pairs]

    def update(self, values: dict[str, torch.Tensor]) -> None:
        """Add one batch: `values` maps a metric's name to its per-pair values (one per pair of the batch)."""
        names = list(values)
        pairs = next(iter(values.values())).numel()
        sums = torch.stack([*(v.detach().to(torch.float64).sum() for v in values.values()),
                            torch.tensor(float(pairs), dtype=torch.float64, device=next(iter(values.values())).device)])
        if self._sums is None:
            self._names, self._sums = names, sums
        else:
            self._sums = self._sums + sums

    def means(self, strategy, prefix: str) -> dict[str, torch.Tensor]:
        """`{prefix + name: mean over every process's pairs}` (float32 scalars); starts afresh."""
        if self._sums is None:
            return {}
        sums, self._sums = strategy.reduce(self._sums, reduce_op="sum"), None
        return {f"{prefix}{name}": (sums[i] / sums[-1]).to(torch.float32) for i, name in enumerate(self._names)}

    def reset(self) -> None:
        self._sums = None


def log_pair_means(module, sums: PairSums, prefix: str, headline: str, extra: dict | None = None) -> None:
    """Log `sums`' means under `prefix` (already reduced over processes: no sync), `headline` on the progress bar."""
    means = {**sums.means(module.trainer.strategy, prefix), **(extra or {})}
    module.log(headline, means.pop(headline), prog_bar=True, sync_dist=False)
    module.log_dict(means, sync_dist=False)
