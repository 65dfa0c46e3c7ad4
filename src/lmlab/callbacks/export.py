"""Export the trained model and tokenizer with `save_pretrained` (loadable by `Auto*.from_pretrained`)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from lmlab.runs.integrity import require_finite

log = logging.getLogger(__name__)


class ExportHuggingFace(L.Callback):
    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        require_finite(pl_module.model.named_parameters(), f"the export {self.dirpath}")  # never NaN weights in hf/
        pl_module.model.save_pretrained(self.dirpath)
        if getattr(pl_module, "tokenizer", None) is not None:
            pl_module.tokenizer.save_pretrained(self.dirpath)
        log.info("Exported the model and tokenizer to %s", self.dirpath)
