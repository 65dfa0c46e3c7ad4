"""`model.init_from`: where a fine-tuning run takes its pretrained body and tokenizer from.

Accepts an lmlab run directory (its `hf/` export, else its last checkpoint), an lmlab checkpoint file,
a Hugging Face model directory, or a hub name; always resolves to something `from_pretrained` loads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmlab.checkpoint.locate import locate_model

log = logging.getLogger(__name__)


def with_init_from(model: Mapping[str, Any], cache_dir: str | Path) -> Mapping[str, Any]:
    """The `model` config node with `model.init_from`, when set, resolved into `model.pretrained`."""
    if not model.get("init_from"):
        return model
    return {**model, "pretrained": resolve_init_from(str(model["init_from"]), cache_dir)}


def resolve_init_from(init_from: str, cache_dir: str | Path) -> str:
    """A Hugging Face directory or hub name holding the model and tokenizer that `init_from` names."""
    found = locate_model(init_from, "model.init_from")
    return str(export_checkpoint(found, Path(cache_dir))) if isinstance(found, Path) else found


def export_checkpoint(ckpt_path: Path, cache_dir: Path) -> Path:
    """The checkpoint's model (and its run's tokenizer) as a Hugging Face directory, cached by content."""
    from lmlab.checkpoint.hf_model import checkpoint_model
    from lmlab.checkpoint.reader import intact_checkpoint
    from lmlab.data.cache import cached_dir, fingerprint

    intact_checkpoint(ckpt_path, "model.init_from")  # a cached export of a checkpoint damaged since is not used
    from lmlab.checkpoint.integrity import MANIFEST

    stat = (ckpt_path / MANIFEST if ckpt_path.is_dir() else ckpt_path).stat()  # a sharded one's manifest is last
    key = fingerprint(ckpt=str(ckpt_path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns)

    def build(tmp: Path) -> None:
        model, tokenizer = checkpoint_model(ckpt_path, key="model.init_from")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return cached_dir(cache_dir / "init_from", key, build, f"Hugging Face export of {ckpt_path}")
