"""Checkpoint integrity: a SHA-256 recorded next to each checkpoint when it is written, checked before a
resume uses it, and no tensor with NaN/inf ever written to a checkpoint or to `hf/`.

Loading a checkpoint only reads its zip index, so bytes damaged inside a tensor load silently as garbage
(NaN, inf); the checksum is what catches them. A checkpoint without a sidecar (written by an older lmlab or
another tool) is accepted when every tensor in it is finite.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from lmlab.errors import LmlabError

SUFFIX = ".sha256"
MANIFEST = "checksums.sha256"  # in a sharded checkpoint directory: one `<sha256>  <file>` line per file
_CHUNK = 1 << 22
# Checkpoints verified in this process, by `_identity`: a command that checks a checkpoint before loading it,
# then loads it through Lightning's checks (or gathers a sharded one), hashes it once.
_verified: set[tuple] = set()


def sidecar(path: Path) -> Path:
    """`<checkpoint>.sha256`: the checksum file of a checkpoint."""
    return path.with_name(path.name + SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksum(written: Path, target: Path) -> None:
    """Record the SHA-256 of `written` (the temp file about to become `target`) in `target`'s sidecar."""
    side = sidecar(target)
    tmp = side.with_name(f"{side.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(f"{file_sha256(written)}  {target.name}\n")
        os.replace(tmp, side)
    finally:
        tmp.unlink(missing_ok=True)


class DamagedCheckpoint(Exception):
    """A checkpoint whose bytes differ from those written, or that holds NaN/inf."""


def write_manifest(directory: Path, digests: dict[str, str]) -> None:
    """Record each file's SHA-256 in `<directory>/checksums.sha256`, written last: a directory without it is
    a write that did not finish."""
    manifest = directory / MANIFEST
    with open(manifest, "w") as f:
        f.writelines(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
        f.flush()
        os.fsync(f.fileno())


def verify_manifest(directory: Path) -> None:
    """Raise `DamagedCheckpoint` unless every file `directory`'s manifest lists is there with its SHA-256."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise DamagedCheckpoint(f"it has no {MANIFEST} (its write did not finish)")
    for line in manifest.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if not (directory / name).is_file():
            raise DamagedCheckpoint(f"{name}, listed in {MANIFEST}, is missing")
        if file_sha256(directory / name) != digest:
            raise DamagedCheckpoint(f"the SHA-256 of {name} differs from the one recorded in {MANIFEST} "
                                    "when it was written")


def verify_checkpoint(path: Path) -> None:
    """Raise `DamagedCheckpoint` unless `path` matches its recorded SHA-256 (or, with none, is all finite);
    a sharded checkpoint (a directory) unless each of its files matches its manifest."""
    seen = _identity(path)
    if seen in _verified:
        return
    side = sidecar(path)
    if path.is_dir():
        verify_manifest(path)
    elif side.is_file():
        expected = side.read_text().split()[0] if side.read_text().strip() else ""
        if file_sha256(path) != expected:
            raise DamagedCheckpoint(f"its SHA-256 differs from the one recorded in {side.name} when it was written")
    else:
        import torch

        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
        if bad := non_finite(checkpoint.get("state_dict", {}).items()):
            raise DamagedCheckpoint(f"{bad} holds NaN or inf values")
    _verified.add(seen)


def _identity(path: Path) -> tuple:
    """(path, size, mtime, inode) of a file; of each file of a directory (a sharded checkpoint)."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return tuple((str(f.resolve()), (st := f.stat()).st_size, st.st_mtime_ns, st.st_ino) for f in files)


def non_finite(named_tensors: Iterable[tuple[str, object]]) -> str | None:
    """The name of the first floating-point tensor holding NaN or inf, or None."""
    import torch

    for name, tensor in named_tensors:
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None


def require_finite(named_tensors: Iterator[tuple[str, object]], what: str) -> None:
    """Refuse to write `what` when a tensor holds NaN or inf (the last good copy on disk is kept)."""
    if bad := non_finite(named_tensors):
        raise diverged(bad, what)


def diverged(name: str, what: str) -> LmlabError:
    return LmlabError(f"{name} holds NaN or inf values: training diverged, so {what} was not written "
                      "(the last good checkpoint is kept; lower optimizer.lr or resume from it)")
