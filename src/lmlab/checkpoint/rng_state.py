"""Save and restore every process's RNG states in checkpoints (Lightning does not), for exact resume."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from lmlab.compat.lightning import collect_rng_states, set_rng_states

log = logging.getLogger(__name__)


class RNGStateCheckpoint(L.Callback):
    """Stores the torch, CUDA, numpy and Python RNG states of each rank under `checkpoint["rng_states"]`.

    Dropout masks and the next epoch's shuffle order come from these generators: without them a resumed
    run draws different random numbers than the uninterrupted one.
    """

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = collect_rng_states(include_cuda=torch.cuda.is_available())
        if torch.distributed.is_available() and torch.distributed.is_initialized() and trainer.world_size > 1:
            gathered: list[Any] = [None] * trainer.world_size  # every rank saves, only rank 0 writes the file
            torch.distributed.all_gather_object(gathered, states)
            checkpoint["rng_states"] = gathered
        else:
            checkpoint["rng_states"] = [states]

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            log.warning("The checkpoint holds no RNG states: random numbers after resuming will differ")
        elif len(states) != trainer.world_size:
            log.warning("The checkpoint holds RNG states of %d processes, this run has %d: not restoring them",
                        len(states), trainer.world_size)
        else:
            self._to_restore = states[trainer.global_rank]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Restored here, after the sanity check and the data loaders' setup, right before the next step.
        if self._to_restore is not None:
            set_rng_states(self._to_restore)
            self._to_restore = None
