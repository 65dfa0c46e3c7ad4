"""`trainer=fsdp`: FSDP2 (`fully_shard`) per transformer block, through Lightning's `ModelParallelStrategy`.

Each block is its own FSDP unit, so a step all-gathers one block's parameters at a time (and overlaps
that with the previous block's compute), as torchtitan's `parallelize_llama` does; the root unit holds
the rest (embeddings, final norm, head). A frozen network a step also runs (DPO's reference) is sharded the
same way: 1/N of it per process, no gradients, no optimizer state. FSDP2 rather than FSDP1 (Lightning's
`FSDPStrategy`): FSDP1 refuses a CPU device, FSDP2 runs on CPU with gloo, so the same code is tested here and run
on GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.strategies import ModelParallelStrategy

from lmlab.errors import LmlabError
from lmlab.models.blocks import transformer_blocks
from lmlab.parallel import fsdp_config
from lmlab.parallel.fsdp_config import OFFLOAD_NEEDS_GPU


class FSDPStrategy(ModelParallelStrategy):
    """Fully sharded data parallel over every process, one FSDP unit per transformer block.

    sharding: `full` shards parameters, gradients and optimizer state and frees each block's gathered
        parameters after its forward (ZeRO-3); `grad_op` keeps them gathered until the backward (ZeRO-2:
        less communication, more memory); `hybrid` shards within a node and replicates across nodes (HSDP).
    cpu_offload: parameters, gradients and optimizer state live in host memory; the optimizer steps there.
    sharded_checkpoint: true (default) has each rank write its own shard of a checkpoint directory (torch
        DCP; `lmlab.checkpoint.sharded`), which resumes on any number of processes; false gathers one
        checkpoint file on rank 0 (memory and time of the whole model in one process).
    """

    def __init__(self, sharding: Literal["full", "hybrid", "grad_op"] = "full", cpu_offload: bool = False,
                 sharded_checkpoint: bool = True, **kwargs: Any):
        if problems := fsdp_config.strategy_problems(sharding=sharding, cpu_offload=cpu_offload,
                                                     sharded_checkpoint=sharded_checkpoint):
            raise LmlabError("; ".join(problems))  # built outside lmlab-train: the rules lmlab-train checks first
        super().__init__(save_distributed_checkpoint=sharded_checkpoint, **kwargs)
        self.sharding = sharding
        self.cpu_offload = cpu_offload

    def setup_environment(self) -> None:
        # data parallel over every process (lmlab's samplers split each global batch over all of them)
        self._data_parallel_size, self._tensor_parallel_size = self.num_nodes * self.num_processes, 1
        if self.cpu_offload and self.root_device.type == "cpu":  # trainer.accelerator=auto on a machine without GPU
            raise LmlabError(OFFLOAD_NEEDS_GPU)
        super().setup_environment()

    def setup(self, trainer) -> None:
        mesh = self._sharding_mesh()
        for network in self.lightning_module.networks():  # lmlab.contracts.TaskModule: a frozen reference too
            # a frozen network has no backward to keep its parameters gathered for: resharded after each forward
            trained = any(p.requires_grad for p in network.parameters())
            shard_per_block(network, mesh, reshard_after_forward=self.sharding != "grad_op" or not trained,
                            cpu_offload=self.cpu_offload)
        super().setup(trainer)

    def model_to_device(self) -> None:
        if not self.cpu_offload:  # offloaded parameters stay in host memory; fully_shard placed the rest
            super().model_to_device()

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any | None = None) -> None:
        if not self._save_distributed_checkpoint:
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        from lmlab.checkpoint.sharded import save_sharded_checkpoint

        save_sharded_checkpoint(self, checkpoint, Path(self.broadcast(str(filepath))),
                                lambda state, tmp: super(FSDPStrategy, self).save_checkpoint(state, tmp))

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> dict[str, Any]:
        # Lightning drops `fit(weights_only=False)` for strategies that restore after setup (this one), and
        # torch's default then refuses lmlab checkpoints (RNG states, hyperparameters): keep lmlab's choice
        return super().load_checkpoint(checkpoint_path, weights_only=False if weights_only is None else weights_only)

    def _sharding_mesh(self):
        if self.sharding != "hybrid":
            return self.device_mesh["data_parallel"]
        from torch.distributed.device_mesh import init_device_mesh

        return init_device_mesh(self.root_device.type, (self.num_nodes, self.num_processes),
                                mesh_dim_names=("replicate", "shard"))


def shard_per_block(model: torch.nn.Module, mesh, reshard_after_forward: bool = True,
                    cpu_offload: bool = False) -> None:
    """`fully_shard` each transformer block of `model` (lmlab.models.blocks), then `model` itself."""
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    options = {"mesh": mesh, "reshard_after_forward": reshard_after_forward,
               "offload_policy": CPUOffloadPolicy() if cpu_offload else OffloadPolicy()}
    for block in reversed(transformer_blocks(model)):  # inner units before the ones around them
        fully_shard(block, **options)
    fully_shard(model, **options)
