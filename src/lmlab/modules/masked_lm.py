"""`MaskedLMModule`: BERT-style masked-token prediction on packed blocks."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from transformers import AutoModelForMaskedLM

from lmlab.contracts import IGNORE_INDEX
from lmlab.modules.base import HFModelModule
from lmlab.modules.masking import MaskingRule, derive_seed
from lmlab.modules.step_loss import StepLoss, log_step_loss


class MaskedLMModule(HFModelModule):
    """Masked-LM pretraining. Logs loss and perplexity over masked tokens, and masked-token accuracy.

    Masks are drawn per batch from a seed derived from (seed, epoch, batch index, rank): no hidden RNG
    state, so resuming is exact; validation uses the same masks at every evaluation, so its numbers compare.
    """

    auto_class = AutoModelForMaskedLM

    def __init__(self, *args, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1, whole_word_mask: bool = False, seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.masking = MaskingRule(self.tokenizer, mlm_probability, mask_replace_prob, random_replace_prob,
                                   whole_word_mask)
        self.val_loss = MeanMetric()
        self.step_loss = StepLoss()
        self.val_accuracy = MulticlassAccuracy(num_classes=self.model.config.vocab_size, average="micro",
                                               ignore_index=IGNORE_INDEX)

    def _mask(self, input_ids: torch.Tensor, *where: object) -> tuple[torch.Tensor, torch.Tensor]:
        return self.masking(input_ids, derive_seed(self.hparams.seed, self.global_rank, *where))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, labels = self._mask(batch["input_ids"], "train", self.current_epoch, batch_idx)
        loss = self.model(input_ids=inputs, labels=labels).loss  # mean over masked tokens only
        log_step_loss(self, self.step_loss, loss, (labels != -100).sum(), batch_idx, perplexity=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        inputs, labels = self._mask(batch["input_ids"], "validation", batch_idx)
        output = self.model(input_ids=inputs, labels=labels)
        self.val_loss.update(output.loss, weight=(labels != IGNORE_INDEX).sum())
        self.val_accuracy.update(output.logits.argmax(dim=-1), labels)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.log_dict({"val/loss": loss, "val/ppl": loss.exp(), "val/masked_accuracy": self.val_accuracy.compute()},
                      prog_bar=True)
        self.val_loss.reset()
        self.val_accuracy.reset()
