"""One rank of the two-process check of ShardedMuon (tests/unit/optim/test_muon.py): every rank builds the same
matrices and gradients, steps ShardedMuon over their Shard(0) DTensors (rows that do not split evenly) and
torch.optim.Muon over the whole ones, and exits 1 if the gathered weights differ by a bit.

    python tests/helpers/muon_shards.py <rank> <world size> <file store>
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Shard, distribute_tensor

from lmlab.optim.muon import ShardedMuon

SHAPES = ((7, 5), (5, 9), (33, 16))


def main(rank: int, world: int, store: str) -> int:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))

        def shard(t: torch.Tensor) -> torch.Tensor:  # this rank's rows; every rank holds the same whole tensor
            return distribute_tensor(t, mesh, [Shard(0)], src_data_rank=None)

        torch.manual_seed(0)
        whole = [torch.nn.Parameter(torch.randn(shape)) for shape in SHAPES]
        sharded = [torch.nn.Parameter(shard(p.detach().clone())) for p in whole]
        options = {"lr": 1e-2, "weight_decay": 0.1, "adjust_lr_fn": "match_rms_adamw"}
        optimizers = torch.optim.Muon(whole, **options), ShardedMuon(sharded, **options)
        for _ in range(3):
            for p, q in zip(whole, sharded, strict=True):
                p.grad = torch.randn(p.shape)
                q.grad = shard(p.grad)
            for optimizer in optimizers:
                optimizer.step()
        same = all(torch.equal(p.detach(), q.detach().full_tensor()) for p, q in zip(whole, sharded, strict=True))
        uneven = any(q.to_local().shape[0] != q.shape[0] / world for q in sharded)
        return 0 if same and uneven else 1
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
