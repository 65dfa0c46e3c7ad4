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
