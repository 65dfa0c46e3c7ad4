"""Tokens trained on per source of a data mixture: `data/tokens/<source>` and the realised shares."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np

from lmlab.data.mixture import MixtureDataModule


class MixtureTokens(L.Callback):
    """Counts each optimizer step's tokens by source, from the training order itself (a function of the
    step): the counts are the same on every process, for any number of processes, and across resumes.
    Does nothing unless the data module is a `MixtureDataModule`."""

    def __init__(self):
        self.counted_steps = 0
        self.tokens: np.ndarray | None = None
        self.names: list[str] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        datamodule = trainer.datamodule
        if not isinstance(datamodule, MixtureDataModule) or self.counted_steps >= trainer.global_step:
            return
        if self.tokens is None:
            self.names, self.tokens = datamodule.names, np.zeros(len(datamodule.names), dtype=np.int64)
        while self.counted_steps < trainer.global_step:
            self.tokens += datamodule.tokens_of_step(self.counted_steps)
            self.counted_steps += 1
        if trainer.global_step % max(trainer.log_every_n_steps, 1) == 0:
            pl_module.log_dict({f"data/tokens/{name}": float(count) for name, count in self._by_name().items()},
                               on_step=True, on_epoch=False)

    def _by_name(self) -> dict[str, int]:
        return dict(zip(self.names, map(int, self.tokens), strict=True))

    def summary_figures(self) -> dict[str, Any]:
        """For `summary.json`: tokens and realised share of each source."""
        if self.tokens is None:
            return {}
        tokens = self._by_name()
        total = max(sum(tokens.values()), 1)
        return {"data_tokens": tokens, "data_shares": {name: round(count / total, 6) for name, count in tokens.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"counted_steps": self.counted_steps, "names": self.names,
                "tokens": None if self.tokens is None else self.tokens.tolist()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.counted_steps, self.names = state_dict["counted_steps"], state_dict["names"]
        self.tokens = None if state_dict["tokens"] is None else np.array(state_dict["tokens"], dtype=np.int64)
