"""Checkpoint files written atomically, with a checksum, never holding NaN/inf weights or secrets."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lmlab.checkpoint.integrity import require_finite, sidecar, write_checksum
from lmlab.compat.lightning import PathLike
from lmlab.utils.redact import redact

HPARAM_KEYS = ("hyper_parameters", "datamodule_hyper_parameters")
LOW_DISK_BYTES = 256 << 20  # a write that fails with less free space than this failed for want of space


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `<name>.tmp-<pid>` next to the target, fsyncs it, records its SHA-256 in `<name>.sha256`,
    then `os.replace`s it onto the target.

    Lightning's own save goes through an fsspec transaction whose temporary file lives in the system temp
    directory: when that is another filesystem the final move is a copy, and a kill mid-copy leaves a
    truncated file. Remote paths (s3://, gs://) keep Lightning's behaviour. A model whose weights hold
    NaN/inf is refused (an error that stops the run), so the last good checkpoint is never replaced by it.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: PathLike, storage_options: Any | None = None) -> None:
        require_finite(iter(checkpoint.get("state_dict", {}).items()), f"the checkpoint {path}")
        checkpoint = {**checkpoint, **{k: redact(checkpoint[k]) for k in HPARAM_KEYS if k in checkpoint}}
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                _save(checkpoint, f, path)
                f.flush()
                os.fsync(f.fileno())
            write_checksum(tmp, path)  # a kill between the two renames leaves a mismatch: skipped on resume
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def remove_checkpoint(self, path: PathLike) -> None:
        super().remove_checkpoint(path)
        if isinstance(get_filesystem(path), LocalFileSystem):
            sidecar(Path(path)).unlink(missing_ok=True)


def _save(checkpoint: dict[str, Any], f: Any, path: Path) -> None:
    """`torch.save`, whose failure on a full disk (a RuntimeError from its zip writer, without errno) becomes
    the `OSError` it is, naming the checkpoint, so the CLI reports it in one line."""
    try:
        torch.save(checkpoint, f)
    except RuntimeError as e:
        if shutil.disk_usage(path.parent).free >= LOW_DISK_BYTES:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
