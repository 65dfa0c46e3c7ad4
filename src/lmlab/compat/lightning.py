"""Lightning's private names that lmlab uses, and the checkpoint layout it reads.

- `optimizer_handles_unscaling`: whether a fused optimizer unscales its own gradients (modules/clipping.py).
- `collect_rng_states`, `set_rng_states`: every RNG's state, as Lightning's own seeding saves it
  (checkpoint/rng_state.py).
- `convert_params`: hyperparameters as the CSV logger's hparams.yaml writes them (tracking/metrics.py).
- `PathLike`: the path type of the `CheckpointIO` interface (checkpoint/files.py).
- `set_ddp_child_command`: the command Lightning's subprocess launcher starts DDP children with under Hydra
  (runs/hydra_ddp.py).
- `FIT_LOOP_KEY`, `BATCH_PROGRESS_KEY`: where a checkpoint keeps the loop counters (checkpoint/position.py).
"""

from __future__ import annotations

from collections.abc import Callable

from lightning.fabric.plugins.precision.amp import _optimizer_handles_unscaling as optimizer_handles_unscaling
from lightning.fabric.utilities.logger import _convert_params as convert_params
from lightning.fabric.utilities.seed import _collect_rng_states as collect_rng_states
from lightning.fabric.utilities.seed import _set_rng_states as set_rng_states
from lightning.fabric.utilities.types import _PATH as PathLike

CHECKED_VERSION = "2.6.6"
FIT_LOOP_KEY = "fit_loop"
BATCH_PROGRESS_KEY = "epoch_loop.batch_progress"

__all__ = ["BATCH_PROGRESS_KEY", "CHECKED_VERSION", "FIT_LOOP_KEY", "PathLike", "collect_rng_states",
           "convert_params", "optimizer_handles_unscaling", "set_ddp_child_command", "set_rng_states"]


def set_ddp_child_command(command: Callable) -> None:
    """Lightning asks `_hydra_subprocess_cmd` for a DDP child's command when Hydra started the process."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = command
