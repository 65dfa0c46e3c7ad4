"""The one way every command opens an lmlab checkpoint: a resume's `ckpt_path`, `lmlab-eval`, `lmlab-generate`,
`model.init_from` and its export.

The file's bytes are checked against the SHA-256 recorded when it was written before anything is loaded, so a
damaged or truncated checkpoint is one line naming it (and the newest intact checkpoint of its run, to use
instead), raised before the command writes anything. A sharded checkpoint (a directory, `trainer=fsdp`) is
checked file by file against its manifest and gathered into this one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmlab.checkpoint.integrity import DamagedCheckpoint, verify_checkpoint
from lmlab.errors import LmlabError, first_line


def intact_checkpoint(path: Path, key: str) -> Path:
    """`path` once verified; else an `LmlabError` naming `key=path`, what is wrong and an intact sibling."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LmlabError(f"{key}={str(path)!r} does not exist")
    try:
        verify_checkpoint(path)
    except DamagedCheckpoint as e:
        raise LmlabError(f"{key}={str(path)!r} is damaged: {e}{_instead(path, key)}") from None
    except Exception as e:  # noqa: BLE001 - whatever torch's reader raises, the file is not a checkpoint
        raise LmlabError(f"{key}={str(path)!r} is truncated or not a checkpoint ({type(e).__name__}: "
                         f"{first_line(e)}){_instead(path, key)}") from None
    return path


def read_checkpoint(path: Path, key: str) -> dict[str, Any]:
    """The checkpoint's contents (tensors memory-mapped, not read), once its bytes are verified."""
    import torch

    from lmlab.checkpoint.sharded import is_sharded_checkpoint, load_sharded_checkpoint

    if is_sharded_checkpoint(intact_checkpoint(path, key)):
        return load_sharded_checkpoint(path)
    # weights_only=False: an lmlab checkpoint holds RNG states and hyperparameters, not only tensors
    return torch.load(path, map_location="cpu", mmap=True, weights_only=False)


def checkpoint_metadata(path: Path) -> dict[str, Any]:
    """A verified checkpoint's step, loops, callbacks' states and hyperparameters, its tensors not read."""
    import torch

    from lmlab.checkpoint.sharded import is_sharded_checkpoint, read_metadata

    if is_sharded_checkpoint(path):
        return read_metadata(path)
    return torch.load(path, map_location="cpu", mmap=True, weights_only=False)


def load_module(module_class: type, path: Path, key: str, **kwargs: Any):
    """`module_class.load_from_checkpoint(path)` on CPU, once the file's bytes are verified; a sharded checkpoint
    is gathered in memory (`read_checkpoint`) and its module built from its hyperparameters and weights, as
    Lightning does. A LoRA module's non-strict load is checked for every trainable parameter (as a resume checks
    it: `lmlab.checkpoint.lora`)."""
    from lmlab.checkpoint.lora import check_trainable_loaded
    from lmlab.checkpoint.sharded import is_sharded_checkpoint, load_sharded_checkpoint

    if is_sharded_checkpoint(intact_checkpoint(path, key)):
        checkpoint = load_sharded_checkpoint(path)  # verified just above: read it once, not verified again
        module = module_class(**{**checkpoint.get("hyper_parameters", {}), **kwargs})
        module.on_load_checkpoint(checkpoint)
        module.load_state_dict(checkpoint["state_dict"], strict=module.strict_loading)
    else:
        checkpoint = None
        module = module_class.load_from_checkpoint(path, map_location="cpu", weights_only=False, **kwargs)
    if module.hparams.get("peft"):
        state = (checkpoint or read_checkpoint(path, key))["state_dict"]
        check_trainable_loaded(module, state, f"{key}={str(path)!r}")
    return module


def checkpoint_files(run_dir: Path) -> list[Path]:
    """Every checkpoint of a run: Lightning's (<run_dir>/checkpoints/*.ckpt) and SLURM's hpc_ckpt_*.ckpt."""
    return sorted([*(run_dir / "checkpoints").glob("*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")])


def _instead(damaged: Path, key: str) -> str:
    """"; use <key>=<newest intact checkpoint of the same run>" where the run has one."""
    run_dir = damaged.parent.parent if damaged.parent.name == "checkpoints" else damaged.parent
    others = [p for p in checkpoint_files(run_dir) if p.resolve() != damaged.resolve()]
    for other in sorted(others, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            verify_checkpoint(other)
        except Exception:  # noqa: BLE001, S112 - any failure means "not intact"
            continue
        return f"; the newest intact checkpoint of its run is {other}: use {key}={other}"
    return ""
