"""An lmlab checkpoint as a plain transformers model and its run's tokenizer: what `lmlab-generate` runs and
what `model.init_from` exports."""

from __future__ import annotations

from pathlib import Path


def run_tokenizer(run_dir: Path, run_cfg, cache_dir: str | Path | None = None):
    """A run's tokenizer: from its `hf/` export, else from its data module (the shared cache, or trained again)."""
    import hydra

    from lmlab.data.tokenizer import load_pretrained_tokenizer

    if (run_dir / "hf" / "tokenizer_config.json").is_file():
        return load_pretrained_tokenizer(str(run_dir / "hf"))
    return hydra.utils.instantiate(run_cfg.data, **({"cache_dir": str(cache_dir)} if cache_dir else {})).tokenizer


def checkpoint_model(ckpt_path: Path, cache_dir: str | Path | None = None, key: str = "source"):
    """An lmlab checkpoint as the plain transformers model its run exports to `hf/` (`checkpoint_weights`), and the
    tokenizer it was trained with: the one inside the checkpoint, else its run's (older checkpoints)."""
    from lmlab.checkpoint.description import embedded_tokenizer, run_config

    model = checkpoint_weights(ckpt_path, key)
    tokenizer = embedded_tokenizer(ckpt_path, key)
    if tokenizer is None:
        tokenizer = run_tokenizer(ckpt_path.parent.parent, run_config(ckpt_path, key), cache_dir)
    return model, tokenizer


def checkpoint_weights(ckpt_path: Path, key: str = "source"):
    """An lmlab checkpoint (a file, or a sharded checkpoint gathered here) as a plain transformers model in eval
    mode: the module rebuilt from the checkpoint's hyperparameters (a LoRA base from `model.pretrained` or from the
    checkpoint itself), the adapter merged, the vocabulary's pad rows sliced off."""
    import hydra

    from lmlab.checkpoint.description import run_config
    from lmlab.checkpoint.reader import intact_checkpoint, load_module
    from lmlab.models.lora import merged
    from lmlab.models.vocab_padding import unpadded

    intact_checkpoint(ckpt_path, key)  # a damaged file: one line naming `key`, before Lightning's import
    module_class = hydra.utils.get_class(run_config(ckpt_path, key).task.module._target_)
    module = load_module(module_class, ckpt_path, key)
    return unpadded(merged(module.model), module.hparams.get("vocab_size")).eval()


def load_model(source: str, cache_dir: str | None):
    """(model in eval mode, tokenizer) from a run directory, checkpoint, HF directory or hub name."""
    from lmlab.checkpoint.locate import locate_model

    found = locate_model(source, "source")
    return checkpoint_model(found, cache_dir) if isinstance(found, Path) else load_hf(found)


def load_hf(name_or_path: str):
    from transformers import AutoModelForCausalLM

    from lmlab.data.tokenizer import load_pretrained_tokenizer
    from lmlab.models import load_pretrained

    return load_pretrained(AutoModelForCausalLM, name_or_path).eval(), load_pretrained_tokenizer(name_or_path)
