"""Batch sizes that stay fixed when the number of devices changes, and exact evaluation under DDP."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import torch
from omegaconf import DictConfig, ListConfig

from lmlab.errors import LmlabError


def global_batch(per_device_batch: int, accumulate: int, world: int) -> int:
    """Samples per optimizer step over all processes: the unit of lmlab's data position."""
    return int(per_device_batch) * int(accumulate) * int(world)


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


def check_gpu_count(trainer_cfg) -> None:
    """More GPUs asked for than this machine has: one line before Lightning's own error deep in its set-up."""
    accelerator, devices = str(trainer_cfg.get("accelerator", "auto")), trainer_cfg.get("devices", 1)
    if accelerator not in ("gpu", "cuda", "auto") or not isinstance(devices, int) or devices <= 1:
        return
    available = torch.cuda.device_count()
    if accelerator == "auto" and available == 0:
        return  # no GPU: `auto` runs the processes on the CPU
    if available < devices:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise LmlabError(f"trainer.devices={devices} asks for {devices} GPUs but this machine has {available}"
                         + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else "")
                         + f": set trainer.devices={max(available, 1)} or trainer.devices=auto")


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


def validate_every_n_steps(cfg: DictConfig) -> None:
    """`trainer.val_check_interval=N` validates every N optimizer steps, as checkpoints and logs count them;
    Lightning counts micro-batches, so under gradient accumulation the interval is scaled by it (else
    2 processes x 4 samples and 1 x 4 accumulating 2 would validate at different steps)."""
    interval = cfg.trainer.get("val_check_interval")
    accumulate = int(cfg.trainer.get("accumulate_grad_batches") or 1)
    if isinstance(interval, int) and not isinstance(interval, bool) and accumulate > 1:
        cfg.trainer.val_check_interval = interval * accumulate


class GlobalOrderSampler(torch.utils.data.DistributedSampler):
    """This rank's share of a training order that depends only on (seed, epoch) and the global batch.

    Epoch `e` is a permutation drawn from `seed + e`, cut to whole global batches (`steps_per_epoch x
    global_batch_size` samples, the same for any number of processes); rank `r` of `world` takes every
    world-th sample from `r`. With per-device batch b, accumulation A and `world` processes, optimizer step
    `s` therefore trains on samples `[s*G, (s+1)*G)` of the permutation (G = b*A*world), whatever the
    number of devices.

    The position is not replayed from a saved per-rank counter: each epoch's iterator starts at the
    trainer's `global_step`, so a resume continues at sample `global_step*G` in O(1), on any number of
    processes (elastic resume), at any step (epoch boundaries included).
    """

    def __init__(self, dataset, batch_size: int, trainer=None, seed: int = 0):
        # a DistributedSampler, so that Lightning does not wrap it in its own under DDP
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        num_samples = len(dataset)
        self.trainer = trainer
        accumulate = trainer.accumulate_grad_batches if trainer is not None else 1
        self.global_batch_size = global_batch(batch_size, accumulate, self.num_replicas)
        self.steps_per_epoch = num_samples // self.global_batch_size
        if self.steps_per_epoch == 0:
            raise LmlabError(f"the training split has {num_samples} examples, fewer than one global batch of "
                             f"{self.global_batch_size} (per-device batch {batch_size} x {accumulate} accumulation "
                             f"x {self.num_replicas} processes): use more data or a smaller batch")
        self._order_key: tuple[int, int] | None = None
        self._order = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.steps_per_epoch * self.global_batch_size // self.num_replicas

    def _run_steps_per_epoch(self) -> int:
        """Optimizer steps in one of the trainer's epochs (fewer under `trainer.limit_train_batches`)."""
        batches = self.trainer.num_training_batches if self.trainer is not None else math.inf
        if math.isinf(batches):
            return self.steps_per_epoch
        return min(self.steps_per_epoch, math.ceil(batches / self.trainer.accumulate_grad_batches))

    def _epoch_order(self, epoch: int, steps_per_epoch: int) -> torch.Tensor:
        """The samples of one epoch, in training order (the last one drawn is kept for `step_samples`)."""
        if self._order_key != (epoch, steps_per_epoch):
            generator = torch.Generator()
            generator.manual_seed(self.seed + epoch)
            self._order = self.permutation(generator)[: steps_per_epoch * self.global_batch_size]
            self._order_key = (epoch, steps_per_epoch)
        return self._order

    def permutation(self, generator: torch.Generator) -> torch.Tensor:
        """An epoch's order of the whole dataset, drawn from `generator` (seeded by seed + epoch)."""
        return torch.randperm(len(self.dataset), generator=generator)

    def step_samples(self, step: int) -> torch.Tensor:
        """The global batch of optimizer step `step`: the dataset indices every rank trains on in it."""
        steps_per_epoch = self._run_steps_per_epoch()
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        start = step_in_epoch * self.global_batch_size
        return self._epoch_order(epoch, steps_per_epoch)[start : start + self.global_batch_size]

    def __iter__(self) -> Iterator[int]:
        step = self.trainer.global_step if self.trainer is not None else 0
        steps_per_epoch = self._run_steps_per_epoch()
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        order = self._epoch_order(epoch, steps_per_epoch)
        yield from order[step_in_epoch * self.global_batch_size + self.rank :: self.num_replicas].tolist()

    # Stateful, so that torchdata's loader restores through these (no replay of yielded batches):
    # the checkpoint records the position in global samples; the start comes from the restored step.
    def state_dict(self) -> dict[str, int]:
        step = self.trainer.global_step if self.trainer is not None else 0
        return {"global_samples": step * self.global_batch_size, "global_batch_size": self.global_batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        pass


def train_sampler(dataset, trainer, batch_size: int) -> GlobalOrderSampler:
    """The training sampler of every lmlab data module: see `GlobalOrderSampler`."""
    return GlobalOrderSampler(dataset, batch_size, trainer, seed=int(os.environ.get("PL_GLOBAL_SEED", 0)))


def eval_sampler(dataset, trainer, batch_size: int) -> object | None:
    """For validation/test: the same examples whatever the number of processes, each counted once.

    An integer `limit_val_batches` (`limit_test_batches`) counts batches of the whole evaluation, as the
    training position counts global samples: its first `limit x batch_size` examples, shared by the ranks,
    not that many batches per rank. Lightning's default `DistributedSampler` would also pad the last shard
    by repeating examples (counted twice in a metric); these shards are uneven instead, and torchmetrics
    states (sums) reduce across ranks exactly. None: let Lightning choose (1 process).
    """
    if trainer is None or trainer.world_size <= 1:
        return None
    limit = trainer.limit_test_batches if trainer.testing else trainer.limit_val_batches
    examples = len(dataset) if isinstance(limit, float) else min(len(dataset), int(limit) * batch_size)
    return EvalShardSampler(dataset, trainer.world_size, trainer.global_rank, examples)


class EvalShardSampler(torch.utils.data.DistributedSampler):
    """Every world-th of the first `examples` examples, from this rank's index (no padding, no shuffling).

    A `DistributedSampler`, so that Lightning does not wrap it in its own under DDP.
    """

    def __init__(self, dataset, num_replicas: int, rank: int, examples: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        if examples < num_replicas:  # a rank without a batch would leave the others waiting in DDP
            raise LmlabError(f"evaluating {examples} examples on {num_replicas} processes: every process needs "
                             "one; raise trainer.limit_val_batches or use more validation data")
        self.total_size, self.num_samples = examples, len(range(rank, examples, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))
