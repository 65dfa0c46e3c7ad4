"""Export the trained model and tokenizer with `save_pretrained` (loadable by `Auto*.from_pretrained`).

The export holds the tokenizer's vocabulary: pad rows lmlab adds for speed are sliced off
(`lmlab.models.vocab_padding`), so the exported model gives the trained model's logits on every real id.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from lmlab.checkpoint.integrity import require_finite
from lmlab.models.lora import save_model
from lmlab.parallel.sharding import is_sharded

log = logging.getLogger(__name__)


class ExportHuggingFace(L.Callback):
    """The trained model at the end of training; a sharded model (`trainer=fsdp`, whose ranks each hold a part of
    every weight) is exported from the final checkpoint once training has ended, gathered in rank 0's memory."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if is_sharded(pl_module.model):
            return
        if pl_module.hparams.get("model", {}).get("fp8"):  # plain linear layers: the export loads without torchao
            from lmlab.models.fp8 import to_plain_linear

            to_plain_linear(pl_module.model)
        # the tokenizer's vocabulary size (pad rows sliced off); with LoRA the merged model, and hf-adapter/
        self.export(pl_module.model, pl_module, pl_module.hparams.get("vocab_size"))

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not is_sharded(pl_module.model):
            return
        from lmlab.callbacks.last_checkpoint import LastCheckpoint
        from lmlab.checkpoint.hf_model import checkpoint_weights

        last = next((c.last_model_path for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)), "")
        if not last:
            log.warning("No %s export: a sharded model is exported from its last checkpoint, and "
                        "callbacks.last_checkpoint is off", self.dirpath)
            return
        log.info("Gathering the sharded checkpoint %s to export it", last)
        self.export(checkpoint_weights(Path(last), "callbacks.export_hf"), pl_module)

    def export(self, model, pl_module: L.LightningModule, vocab_size: int | None = None) -> None:
        require_finite(model.named_parameters(), f"the export {self.dirpath}")  # never NaN weights in hf/
        if pl_module.hparams.get("model", {}).get("mup"):  # never with peft: models.config_checks refuses it
            from lmlab.models.mup import folded

            model = folded(model)  # a standard model with μP's logits, for loaders that know nothing of μP
        save_model(model, self.dirpath, vocab_size)
        if pl_module.tokenizer is not None:
            pl_module.tokenizer.save_pretrained(self.dirpath)
        for directory in (self.dirpath, self.dirpath.with_name(f"{self.dirpath.name}-adapter")):
            with_umask_modes(directory)
        log.info("Exported the model and tokenizer to %s", self.dirpath)


def with_umask_modes(directory: Path) -> None:
    """Give every file under `directory` the mode the umask allows (0644 under 022), as any other file of the run.

    safetensors writes through a private temp file (0600): others on a shared machine could not load the export.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.rglob("*") if directory.is_dir() else ():
        if path.is_file():
            path.chmod(0o666 & ~umask)
