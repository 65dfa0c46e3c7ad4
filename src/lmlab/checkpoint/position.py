"""The training position in a checkpoint, in global samples, and Lightning's loop counters made to match it.

The data order is a function of the optimizer step (`lmlab.distributed.GlobalOrderSampler`), so the only
position that matters is `global_step`. Lightning's loops also count micro-batches per process; those
counters are rewritten on load when they cannot be trusted as saved:

- the number of processes or the gradient accumulation changed (elastic resume with a fixed global
  batch): micro-batches per step differ, so the counters are rescaled from the saved steps;
- the checkpoint was written in the middle of an accumulation (a signal between micro-batches): the
  partial step is dropped, and redone from its first micro-batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

POSITION_KEY = "data_position"
_COUNTERS = ("ready", "started", "processed", "completed")


def global_batch_size(trainer) -> int | None:
    """Samples per optimizer step over all processes, when the data module says its per-device batch."""
    from lmlab.distributed import global_batch

    batch = trainer.datamodule.batch_size if trainer.datamodule is not None else None  # lmlab.contracts.DataModule
    return None if batch is None else global_batch(batch, trainer.accumulate_grad_batches, trainer.world_size)


def save_position(trainer, checkpoint: dict[str, Any]) -> None:
    """Record where training stands in global samples, and the split of the global batch that got there."""
    batch = global_batch_size(trainer)
    checkpoint[POSITION_KEY] = {
        "global_step": trainer.global_step,
        "global_samples": None if batch is None else trainer.global_step * batch,
        "global_batch_size": batch,
        "world_size": trainer.world_size,
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
    }


def restore_position(trainer, checkpoint: dict[str, Any]) -> None:
    """Rewrite the saved micro-batch counters for this launch's processes and accumulation (see above)."""
    from lmlab.compat.lightning import BATCH_PROGRESS_KEY, FIT_LOOP_KEY

    position = checkpoint.get(POSITION_KEY)
    loops = checkpoint.get("loops", {}).get(FIT_LOOP_KEY)
    if not position or not loops:
        return
    old, new = position["accumulate_grad_batches"], trainer.accumulate_grad_batches
    progress = loops[BATCH_PROGRESS_KEY]
    in_epoch = progress["current"]["processed"]
    if old == new and in_epoch % old == 0:
        return
    steps_in_epoch = in_epoch // old
    steps_before = (progress["total"]["processed"] - in_epoch) // old
    if in_epoch % old:
        progress["is_last_batch"] = False
    # As Lightning saves them after a batch's end: that batch processed but not yet "completed"; at the
    # start of an epoch (no batch of it left), as saved at the end of the previous one.
    ended_a_batch = steps_in_epoch > 0
    for scope, steps in (("current", steps_in_epoch), ("total", steps_before + steps_in_epoch)):
        batches = steps * new
        progress[scope] = {key: batches for key in _COUNTERS} | {"completed": batches - ended_a_batch}


def check_global_batch(cfg, ckpt_path: str) -> None:
    """Refuse, before training, a resume whose global batch differs from the checkpoint's.

    The data position is `global_step x global batch`: another global batch would continue at another
    sample. A different number of processes is fine when `global_batch_size` keeps the global batch.
    """
    from lmlab.checkpoint.reader import checkpoint_metadata
    from lmlab.distributed import global_batch, world_size
    from lmlab.errors import LmlabError

    saved = checkpoint_metadata(Path(ckpt_path)).get(POSITION_KEY) or {}
    if not saved.get("global_batch_size") or not cfg.data.get("batch_size"):
        return
    try:
        world = world_size(cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1))
    except LmlabError:  # devices=auto or -1: the count is only known inside the trainer
        return
    accumulate = int(cfg.trainer.get("accumulate_grad_batches", 1))
    batch = global_batch(cfg.data.batch_size, accumulate, world)
    if batch != saved["global_batch_size"]:
        raise LmlabError(
            f"this launch's global batch is {batch} samples (data.batch_size={cfg.data.batch_size} x "
            f"{accumulate} accumulation x {world} processes) but {ckpt_path} was trained with "
            f"{saved['global_batch_size']} ({saved['world_size']} processes): set "
            f"global_batch_size={saved['global_batch_size']} to resume at the same sample on any number of devices")
