"""`model.init_from`: where a fine-tuning run takes its pretrained body and tokenizer from.

Accepts an lmlab run directory (its `hf/` export, else its last checkpoint), an lmlab checkpoint file,
a Hugging Face model directory, or a hub name; always resolves to something `from_pretrained` loads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError

log = logging.getLogger(__name__)


def is_lmlab_run(directory: Path) -> bool:
    """lmlab writes config.yaml and run.json into every run directory before training starts."""
    return (directory / "config.yaml").is_file() and (directory / "run.json").is_file()


def with_init_from(model: Mapping[str, Any], cache_dir: str | Path) -> Mapping[str, Any]:
    """The `model` config node with `model.init_from`, when set, resolved into `model.pretrained`."""
    if not model.get("init_from"):
        return model
    return {**model, "pretrained": resolve_init_from(str(model["init_from"]), cache_dir)}


def resolve_init_from(init_from: str, cache_dir: str | Path) -> str:
    """A Hugging Face directory or hub name holding the model and tokenizer that `init_from` names."""
    path = Path(init_from).expanduser()
    if path.is_file():
        if path.suffix != ".ckpt" or not is_lmlab_run(path.parent.parent):
            raise LmlabError(f"model.init_from={init_from!r} is a file but not a checkpoint of an lmlab run "
                             "(<run dir>/checkpoints/*.ckpt)")
        return str(export_checkpoint(path, Path(cache_dir), "model.init_from"))
    if path.is_dir():
        if is_lmlab_run(path):
            if (path / "hf" / "config.json").is_file():
                return str(path / "hf")
            if (path / "checkpoints" / "last.ckpt").is_file():
                return str(export_checkpoint(path / "checkpoints" / "last.ckpt", Path(cache_dir), "model.init_from"))
            raise LmlabError(f"model.init_from={init_from!r} is an lmlab run without hf/ export or "
                             "checkpoints/last.ckpt (did it finish?)")
        if (path / "config.json").is_file():
            return str(path)
        raise LmlabError(f"model.init_from={init_from!r} is not an lmlab run directory (no config.yaml and run.json) "
                         "nor a Hugging Face model directory (no config.json)")
    if path.is_absolute() or init_from.startswith((".", "~")) or init_from.count("/") > 1:
        raise LmlabError(f"model.init_from={init_from!r} does not exist")
    return init_from  # a hub name


def run_tokenizer(run_dir: Path, run_cfg, cache_dir: str | Path | None = None):
    """A run's tokenizer: from its `hf/` export, else from its data module (the shared cache, or trained again)."""
    import hydra

    from lmlab.data.tokenizer import load_pretrained_tokenizer

    if (run_dir / "hf" / "tokenizer_config.json").is_file():
        return load_pretrained_tokenizer(str(run_dir / "hf"))
    return hydra.utils.instantiate(run_cfg.data, **({"cache_dir": str(cache_dir)} if cache_dir else {})).tokenizer


def checkpoint_model(ckpt_path: Path, key: str, cache_dir: str | Path | None = None):
    """An lmlab checkpoint as the plain transformers model its run exports to `hf/`, in eval mode, and the run's
    tokenizer: the module rebuilt from the checkpoint's hyperparameters (a LoRA base from `model.pretrained` or
    from the checkpoint itself), the adapter merged, the vocabulary's pad rows sliced off. A damaged file is
    an `LmlabError` naming `key` (the option that named the checkpoint)."""
    import hydra
    from omegaconf import OmegaConf

    from lmlab.models.lora import merged
    from lmlab.models.vocab_padding import unpadded
    from lmlab.runs.checkpoint_load import intact_checkpoint, load_module

    intact_checkpoint(ckpt_path, key)  # before the module's (Lightning's) import

    run_dir = ckpt_path.parent.parent
    run_cfg = OmegaConf.load(run_dir / "config.yaml")
    module_class = hydra.utils.get_class(run_cfg.task.module._target_)
    module = load_module(module_class, ckpt_path, key)
    model = unpadded(merged(module.model), module.hparams.get("vocab_size"))
    return model.eval(), run_tokenizer(run_dir, run_cfg, cache_dir)


def export_checkpoint(ckpt_path: Path, cache_dir: Path, key: str) -> Path:
    """The checkpoint's model (and its run's tokenizer) as a Hugging Face directory, cached by content."""
    from lmlab.data.cache import cached_dir, fingerprint
    from lmlab.runs.checkpoint_load import intact_checkpoint

    intact_checkpoint(ckpt_path, key)  # a cached export of a checkpoint damaged since is not used either
    stat = ckpt_path.stat()
    key = fingerprint(ckpt=str(ckpt_path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns)

    def build(tmp: Path) -> None:
        model, tokenizer = checkpoint_model(ckpt_path, key)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return cached_dir(cache_dir / "init_from", key, build, f"Hugging Face export of {ckpt_path}")
