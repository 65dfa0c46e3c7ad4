"""Where a model comes from: the one rule that `model.init_from`, `lmlab-generate` and `lmlab-eval` share."""

from __future__ import annotations

from pathlib import Path

from lmlab.checkpoint.description import is_lmlab_run, run_config
from lmlab.errors import LmlabError


def locate_model(source: str, key: str) -> Path | str:
    """The lmlab checkpoint (a `Path`) or the Hugging Face directory or hub name (a `str`) that `source` names.

    `source` is an lmlab run directory (its `hf/` export, else its last checkpoint), an lmlab checkpoint
    (in its run's `checkpoints/`, or anywhere: it carries its run's config and tokenizer), a Hugging Face model
    directory or a hub name; `key` names the setting in errors.
    """
    path = Path(source).expanduser()
    if path.is_file() and path.suffix != ".ckpt":
        raise LmlabError(f"{key}={source!r} is a file but not a checkpoint of an lmlab run (a .ckpt file)")
    if path.suffix == ".ckpt" and path.exists():  # a file, or a sharded checkpoint's directory (trainer=fsdp)
        if not is_lmlab_run(path.parent.parent):
            run_config(path, key)  # outside its run: it must carry its run's config (one line if damaged)
        return path
    if path.is_dir():
        if is_lmlab_run(path):
            if (path / "hf" / "config.json").is_file():
                return str(path / "hf")
            if (path / "checkpoints" / "last.ckpt").exists():  # a file, or a sharded checkpoint's directory
                return path / "checkpoints" / "last.ckpt"
            raise LmlabError(f"{key}={source!r} is an lmlab run without hf/ export or checkpoints/last.ckpt "
                             "(did it finish?)")
        if (path / "config.json").is_file():
            return str(path)
        raise LmlabError(f"{key}={source!r} is not an lmlab run directory (no config.yaml and run.json) "
                         "nor a Hugging Face model directory (no config.json)")
    if path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1:
        raise LmlabError(f"{key}={source!r} does not exist")
    return source  # a hub name

