"""Sharded checkpoints: a directory of torch DCP shards (one file per rank, written by that rank), Lightning's
`meta.pt` (loops, callbacks, hyperparameters) and lmlab's `checksums.sha256` manifest.

`trainer=fsdp` writes them (`trainer.strategy.sharded_checkpoint=true`, the default); Lightning's
`ModelParallelStrategy` loads them on any number of processes (DCP reshards). This module adds what lmlab
promises of every checkpoint: written under a temporary name and renamed into place once complete, a
checksum per file, no NaN weights, no secrets; and reads one outside training as a single-file checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

METADATA_FILE = "meta.pt"  # Lightning's: everything but the weights and optimizer state
DCP_INDEX = ".metadata"  # torch DCP's: which tensor chunk lives in which shard file


def is_sharded_checkpoint(path: str | Path) -> bool:
    """A checkpoint directory (a single-file checkpoint is a file)."""
    return Path(path).is_dir()


def save_sharded_checkpoint(strategy: Any, checkpoint: dict[str, Any], path: Path,
                            save: Callable[[dict[str, Any], Path], None]) -> None:
    """`save(checkpoint, tmp)` on every rank (each writes its shard), then rank 0 records every file's SHA-256
    and renames `tmp` onto `path`: a kill at any moment leaves the previous checkpoint or the new one, whole."""
    import torch.distributed as dist

    from lmlab.checkpoint.files import HPARAM_KEYS
    from lmlab.checkpoint.integrity import diverged, file_sha256, non_finite, write_manifest
    from lmlab.utils.redact import redact

    bad = non_finite((name, _local(t)) for name, t in checkpoint.get("state_dict", {}).items())
    if strategy.reduce_boolean_decision(bad is not None, all=False):  # all ranks refuse, or the others hang
        raise diverged(bad or "a parameter shard of another rank", f"the checkpoint {path}")
    checkpoint = {**checkpoint, **{k: redact(checkpoint[k]) for k in HPARAM_KEYS if k in checkpoint}}
    tmp = path.with_name(f"{path.name}.tmp-{strategy.broadcast(os.getpid())}")
    save(checkpoint, tmp)
    own = {p.name: file_sha256(p) for p in tmp.glob(f"__{strategy.global_rank}_*.distcp")}
    digests: list[dict[str, str]] = [own]
    if dist.is_available() and dist.is_initialized():
        digests = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(digests, own)
    if strategy.is_global_zero:
        files = {name: digest for part in digests for name, digest in part.items()}
        files |= {name: file_sha256(tmp / name) for name in (DCP_INDEX, METADATA_FILE)}
        write_manifest(tmp, files)
        _move_into_place(tmp, path)
    strategy.barrier("lmlab.save_sharded_checkpoint")


def _local(tensor: Any) -> Any:
    """A DTensor's shard on this rank (what this rank writes)."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def _move_into_place(tmp: Path, path: Path) -> None:
    """Replace `path` (a directory or a file) by the directory `tmp`; the old one is moved aside first, since a
    directory cannot be renamed onto a non-empty one."""
    from lmlab.checkpoint.integrity import sidecar

    old = path.with_name(f"{path.name}.old-{os.getpid()}")
    if path.is_dir():
        os.replace(path, old)
    elif path.exists():
        path.unlink()
    sidecar(path).unlink(missing_ok=True)  # a single-file checkpoint's checksum
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def read_metadata(path: Path) -> dict[str, Any]:
    """Everything but the weights and optimizer state (global step, data position, callbacks' states)."""
    import torch

    return torch.load(path / METADATA_FILE, map_location="cpu", weights_only=False)


def load_sharded_checkpoint(path: str | Path) -> dict[str, Any]:
    """The whole checkpoint in host memory, laid out as a single-file Lightning checkpoint (`state_dict`,
    `optimizer_states`, loops, callbacks, hyperparameters): torch's own conversion (`dcp_to_torch_save`) into a
    temporary file, read back memory-mapped."""
    import tempfile

    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="lmlab-dcp-") as tmp:
        whole = Path(tmp) / "whole.pt"
        dcp_to_torch_save(path, whole)
        checkpoint = torch.load(whole, map_location="cpu", weights_only=False)
    optimizer_keys = sorted((k for k in checkpoint if re.fullmatch(r"optimizer_\d+", k)), key=lambda k: int(k[10:]))
    if optimizer_keys:
        checkpoint["optimizer_states"] = [checkpoint.pop(k) for k in optimizer_keys]
    checkpoint.update(read_metadata(path))
    return checkpoint
