"""`CausalLMModule`: next-token prediction on packed blocks."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric
from transformers import AutoModelForCausalLM

from lmlab.modules.base import HFModelModule


class CausalLMModule(HFModelModule):
    """Causal-LM pretraining. Logs loss and perplexity for train and validation.

    Validation perplexity is exp(mean token cross-entropy over the whole split): the per-batch mean
    loss is aggregated by a token-weighted torchmetrics `MeanMetric`, which also syncs across DDP ranks.
    """

    auto_class = AutoModelForCausalLM

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.val_loss = MeanMetric()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        input_ids = batch["input_ids"]
        loss = self.model(input_ids=input_ids, labels=input_ids).loss  # the model shifts labels itself
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/ppl", loss.detach().exp())
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        input_ids = batch["input_ids"]
        loss = self.model(input_ids=input_ids, labels=input_ids).loss
        self.val_loss.update(loss, weight=input_ids[:, 1:].numel())

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.log_dict({"val/loss": loss, "val/ppl": loss.exp()}, prog_bar=True, sync_dist=False)
        self.val_loss.reset()
