"""`RewardModule`: a Bradley-Terry reward model: one score per sequence, trained so chosen outscores rejected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from lmlab.data.preference_batch import split_pairs
from lmlab.models.reference import disable_dropout as without_dropout
from lmlab.modules.base import HFModelModule
from lmlab.modules.pair_metrics import PairSums, log_pair_means
from lmlab.modules.step_loss import ends_optimizer_step


class RewardModule(HFModelModule):
    """Sequence classification with one output (the reward), loss -log σ(r_chosen - r_rejected [- margin]) as TRL's
    `RewardTrainer` computes it; logs `accuracy` (chosen scored higher) and `margin` as means over every pair of a
    step or of the validation split. The batch is a preference batch (`lmlab.data.preference_batch`); a
    `margin` in it (data.margin_column) is subtracted. `model.init_from` gives the body (e.g. an SFT run)."""

    auto_class = AutoModelForSequenceClassification
    peft_task_type = "SEQ_CLS"
    batch_keys = ("input_ids", "attention_mask")

    def __init__(self, model: Mapping[str, Any], *args, disable_dropout: bool = True, cache_dir: str = "outputs/.cache",
                 tokenizer=None, **kwargs):
        from lmlab.checkpoint.init_from import with_init_from

        kwargs.pop("num_labels", None)  # one score; present when reloading hparams
        super().__init__(with_init_from(model, cache_dir), *args, tokenizer=tokenizer, num_labels=1, **kwargs)
        if tokenizer is not None and tokenizer.pad_token_id is not None:
            # a decoder (GPT-2, Llama) scores its last token that is not padding: it must know the collator's pad
            self.model.config.pad_token_id = tokenizer.pad_token_id
        if disable_dropout:
            without_dropout(self.model)
        self.train_pairs, self.val_pairs = PairSums(), PairSums()

    def rewards(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The reward of each pair's chosen and rejected sequence (fp32)."""
        scores = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        return split_pairs(scores.float())

    def pair_metrics(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-pair loss, accuracy and margin of `batch`."""
        chosen, rejected = self.rewards(batch)
        difference = chosen - rejected
        losses = -F.logsigmoid(difference - batch["margin"] if "margin" in batch else difference)
        return {"loss": losses, "accuracy": (difference > 0).float(), "margin": difference.detach()}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        metrics = self.pair_metrics(batch)
        self.train_pairs.update(metrics)
        if ends_optimizer_step(self.trainer, batch_idx):
            log_pair_means(self, self.train_pairs, "train/", "train/loss")
        return metrics["loss"].mean()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.val_pairs.update(self.pair_metrics(batch))

    def on_validation_epoch_start(self) -> None:
        self.val_pairs.reset()

    def on_validation_epoch_end(self) -> None:
        log_pair_means(self, self.val_pairs, "val/", "val/accuracy")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Each pair's rewards (`lmlab-eval` on a reward model: `lmlab.evaluation.pairs`)."""
        chosen, rejected = self.rewards(batch)
        return {"chosen": chosen, "rejected": rejected}
