"""Batch sizes that stay fixed when the number of devices changes, and exact evaluation under DDP."""

from __future__ import annotations

import math
import os

from omegaconf import DictConfig, ListConfig

from lmlab.errors import LmlabError


def world_size(devices: object, num_nodes: int = 1) -> int:
    """Number of training processes for `trainer.devices` (a count or a list of ids) and `trainer.num_nodes`."""
    if isinstance(devices, (list, tuple, ListConfig)):
        count = len(devices)
    elif isinstance(devices, int) or (isinstance(devices, str) and devices.isdigit()):
        count = int(devices)
    else:
        count = 0
    if count <= 0:
        raise LmlabError(f"global_batch_size needs trainer.devices as a number of devices, got {devices!r}")
    return count * int(num_nodes)


def split_global_batch(global_batch_size: int, world: int, max_device_batch: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation steps) so that batch * accumulation * world == global.

    Uses the fewest accumulation steps that keep the per-device batch at most `max_device_batch`.
    """
    if global_batch_size <= 0 or global_batch_size % world:
        raise LmlabError(f"global_batch_size={global_batch_size} is not a positive multiple of the "
                         f"{world} training processes (trainer.devices x trainer.num_nodes)")
    per_process = global_batch_size // world
    accumulate = math.ceil(per_process / max(1, max_device_batch))
    while per_process % accumulate:
        accumulate += 1
    return per_process // accumulate, accumulate


def apply_global_batch_size(cfg: DictConfig) -> None:
    """When `global_batch_size` is set, derive `data.batch_size` and `trainer.accumulate_grad_batches`.

    `data.batch_size` is then the largest batch one device takes; the global batch (and so the meaning
    of the learning rate) is the same on 1 CPU or 2 nodes of 8 GPUs.
    """
    global_batch_size = cfg.get("global_batch_size")
    if not global_batch_size:
        return
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1:
        raise LmlabError("set either global_batch_size or trainer.accumulate_grad_batches, not both")
    world = world_size(cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1))
    batch, accumulate = split_global_batch(int(global_batch_size), world, int(cfg.data.batch_size))
    cfg.data.batch_size = batch
    cfg.trainer.accumulate_grad_batches = accumulate


def train_sampler(dataset, trainer) -> object:
    """A shuffle that depends only on (seed, epoch), split across ranks by striding.

    With N processes of batch B/N, the ranks' batches together are exactly the batches one process of
    batch B draws: results do not depend on the number of devices, and the order needs no RNG state
    to resume. Lightning keeps a sampler that is already distributed and calls its `set_epoch`.

    torchdata's stateful version saves how far into the epoch it is; it draws the epoch's permutation
    lazily, after Lightning has set the epoch on resume (a plain `DistributedSampler` is fast-forwarded
    before that, on the permutation of epoch 0).
    """
    from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler

    world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    return StatefulDistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, drop_last=True,
                                      seed=int(os.environ.get("PL_GLOBAL_SEED", 0)))


def eval_sampler(dataset, trainer) -> object | None:
    """For validation/test under DDP: each example on exactly one rank, no padding duplicates.

    Lightning's default `DistributedSampler` pads the last shard by repeating examples, which counts
    them twice in a metric; `UnrepeatedDistributedSampler` leaves the shards uneven instead, and the
    torchmetrics states (sums) reduce across ranks correctly. None: let Lightning choose (1 process).
    """
    if trainer is None or trainer.world_size <= 1:
        return None
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    return UnrepeatedDistributedSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                        shuffle=False)
