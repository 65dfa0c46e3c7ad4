"""What a checkpoint carries about its run, so that it loads wherever it lies: the run's resolved config (secrets
masked, as in config.yaml) and its tokenizer's files. `lmlab-generate`, `lmlab-eval`, `model.init_from` and
`lmlab-consolidate`'s output read a checkpoint copied out of its run directory through this; a checkpoint of an
older lmlab (without it) still loads from inside its run directory (`<run dir>/checkpoints/`)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError

DESCRIPTION_KEY = "lmlab_run"  # in the checkpoint dict: {"config": dict, "tokenizer": {file name: bytes}}


def is_lmlab_run(directory: Path) -> bool:
    """lmlab writes config.yaml and run.json into every run directory before training starts."""
    return (directory / "config.yaml").is_file() and (directory / "run.json").is_file()


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """The files `tokenizer.save_pretrained` writes, in memory (a few MB at most: small beside the weights)."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def description(checkpoint: Path, key: str) -> dict[str, Any] | None:
    """The run description inside a verified checkpoint (a file or a sharded directory); None if it has none."""
    from lmlab.checkpoint.reader import intact_checkpoint

    path = intact_checkpoint(checkpoint, key)
    stat = path.stat()
    return _description(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _description(path: str, mtime_ns: int, size: int) -> dict[str, Any] | None:
    """Read once per file version: a command asks for the config, then the tokenizer."""
    from lmlab.checkpoint.reader import checkpoint_metadata

    found = checkpoint_metadata(Path(path)).get(DESCRIPTION_KEY)
    return found if isinstance(found, dict) and "config" in found else None


def run_config(checkpoint: Path, key: str):
    """The config of the run that wrote `checkpoint`: the copy inside it, else its run directory's config.yaml."""
    from omegaconf import OmegaConf

    if (found := description(checkpoint, key)) is not None:
        return OmegaConf.create(found["config"])
    run_dir = checkpoint.parent.parent
    if is_lmlab_run(run_dir):
        return OmegaConf.load(run_dir / "config.yaml")
    raise LmlabError(f"{key}={str(checkpoint)!r} holds no config of its run (an older lmlab's checkpoint): load it "
                     "from inside its run directory (<run dir>/checkpoints/)")


def embedded_tokenizer(checkpoint: Path, key: str):
    """The tokenizer stored in `checkpoint`, or None when it holds none."""
    from lmlab.data.tokenizer import load_pretrained_tokenizer

    found = description(checkpoint, key)
    if not found or not found.get("tokenizer"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in found["tokenizer"].items():
            (Path(tmp) / name).write_bytes(data)
        return load_pretrained_tokenizer(tmp)
