"""Sharded checkpoints (a directory of torch DCP shards, one per rank, and Lightning's `meta.pt`) read as one.

`trainer=fsdp trainer.strategy.sharded_checkpoint=true` writes them; this reads one outside training as the
dict a single-file checkpoint holds, gathered in this one process. A relaunch does not resume from them yet
(`lmlab.runs.resume` refuses them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

METADATA_FILE = "meta.pt"  # Lightning's: everything but the weights and optimizer state
DCP_INDEX = ".metadata"  # torch DCP's: which tensor chunk lives in which shard file


def is_sharded_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / DCP_INDEX).is_file()


def load_sharded_checkpoint(path: str | Path) -> dict[str, Any]:
    """The whole checkpoint in host memory, laid out as a single-file Lightning checkpoint (`state_dict`,
    `optimizer_states`, loops, callbacks, hyperparameters)."""
    import torch
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.format_utils import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    path = Path(path)
    checkpoint: dict[str, Any] = {}
    _load_state_dict(checkpoint, storage_reader=FileSystemReader(path), planner=_EmptyStateDictLoadPlanner(),
                     no_dist=True)
    optimizer_keys = sorted((k for k in checkpoint if re.fullmatch(r"optimizer_\d+", k)), key=lambda k: int(k[10:]))
    if optimizer_keys:
        checkpoint["optimizer_states"] = [checkpoint.pop(k) for k in optimizer_keys]
    checkpoint.update(torch.load(path / METADATA_FILE, map_location="cpu", weights_only=False))
    return checkpoint
