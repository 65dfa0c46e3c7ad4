"""Export the trained model and tokenizer with `save_pretrained` (loadable by `Auto*.from_pretrained`).

The export holds the tokenizer's vocabulary: pad rows lmlab adds for speed are sliced off
(`lmlab.models.vocab_padding`), so the exported model gives the trained model's logits on every real id.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from lmlab.models.lora import save_model
from lmlab.runs.integrity import require_finite

log = logging.getLogger(__name__)


class ExportHuggingFace(L.Callback):
    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        require_finite(pl_module.model.named_parameters(), f"the export {self.dirpath}")  # never NaN weights in hf/
        if pl_module.hparams.get("model", {}).get("fp8"):  # plain linear layers: the export loads without torchao
            from lmlab.models.fp8 import to_plain_linear

            to_plain_linear(pl_module.model)
        # the tokenizer's vocabulary size (pad rows sliced off); with LoRA the merged model, and hf-adapter/
        save_model(pl_module.model, self.dirpath, pl_module.hparams.get("vocab_size"))
        if getattr(pl_module, "tokenizer", None) is not None:
            pl_module.tokenizer.save_pretrained(self.dirpath)
        log.info("Exported the model and tokenizer to %s", self.dirpath)
