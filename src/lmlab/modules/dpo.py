"""`DPOModule`: preference optimisation of a causal LM (DPO and its variants) on chosen/rejected pairs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from lmlab.data.preference_batch import REFERENCE_COLUMNS
from lmlab.models.reference import FrozenReference, reference_logits
from lmlab.models.reference import disable_dropout as without_dropout
from lmlab.modules.base import HFModelModule
from lmlab.modules.pair_metrics import PairSums, log_pair_means
from lmlab.modules.preference_losses import (
    REFERENCE_FREE,
    PreferenceLoss,
    SequenceLogps,
    preference_loss,
    sequence_logps,
)
from lmlab.modules.reference_logps import attach_reference_logps
from lmlab.modules.sft import SFTModule
from lmlab.modules.step_loss import ends_optimizer_step


class DPOModule(HFModelModule):
    """Direct preference optimisation: `loss_type` sigmoid (DPO), hinge, ipo or simpo (reference-free), by TRL's
    names and formulas (`lmlab.modules.preference_losses`).

    The reference is the starting policy (`model.init_from`: an SFT run), frozen (`lmlab.models.reference`); under
    `peft` it is the policy with its adapters disabled, so no second model is held; with `precompute_reference`
    its log-probabilities are computed once before training and read from the batches
    (`lmlab.modules.reference_logps`), so no reference model is held or run at all. Logs TRL's metrics as
    `train/` and `val/` means over every pair of a step or of the validation split (`lmlab.modules.pair_metrics`):
    `rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins`, `logps/chosen`, `logps/rejected`,
    and, on validation, the greedy exact match of the chosen answers as SFT does.
    """

    auto_class = AutoModelForCausalLM
    peft_task_type = "CAUSAL_LM"
    batch_keys = ("input_ids", "attention_mask", "labels")

    def __init__(self, model: Mapping[str, Any], *args, loss_type: str = "sigmoid", beta: float = 0.1,
                 label_smoothing: float = 0.0, simpo_gamma: float = 0.5, disable_dropout: bool = True,
                 precompute_reference: bool = False, cache_dir: str = "outputs/.cache", max_new_tokens: int = 64,
                 **kwargs):
        from lmlab.checkpoint.init_from import with_init_from

        model = with_init_from(model, cache_dir)
        super().__init__(model, *args, **kwargs)
        self.loss_type, self.beta = loss_type, beta
        self.label_smoothing, self.simpo_gamma = label_smoothing, simpo_gamma
        self.max_new_tokens = max_new_tokens
        if disable_dropout:
            without_dropout(self.model)
        self.precompute_reference = precompute_reference and loss_type not in REFERENCE_FREE
        needs_copy = loss_type not in REFERENCE_FREE and not self.hparams.get("peft") and not precompute_reference
        self.reference = FrozenReference(self.model) if needs_copy else None
        self.train_pairs, self.val_pairs = PairSums(), PairSums()

    def setup(self, stage: str) -> None:
        # before Lightning restores a checkpoint: the policy is still the starting model, i.e. the reference
        if self.precompute_reference:
            attach_reference_logps(self, self.trainer.datamodule)

    def networks(self) -> list[torch.nn.Module]:
        return [self.model] if self.reference is None else [self.model, self.reference.model]

    def pair_loss(self, batch: dict[str, torch.Tensor]) -> PreferenceLoss:
        """The loss of each pair of `batch` (chosen rows, then rejected rows: `lmlab.data.preference_batch`)."""
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        policy = sequence_logps(self.model(**inputs).logits, batch["labels"])
        reference = None
        if self.precompute_reference:
            chosen, rejected = (batch[column] for column in REFERENCE_COLUMNS)
            reference = SequenceLogps(chosen, rejected, policy.chosen_tokens, policy.rejected_tokens)
        elif self.loss_type not in REFERENCE_FREE:
            reference = sequence_logps(reference_logits(self.model, self.reference, **inputs), batch["labels"])
        return preference_loss(self.loss_type, policy, reference, self.beta, self.label_smoothing, self.simpo_gamma)

    @staticmethod
    def metrics(out: PreferenceLoss) -> dict[str, torch.Tensor]:
        """TRL's per-pair metrics (its names), and the loss."""
        return {"loss": out.losses, "rewards/chosen": out.chosen_rewards, "rewards/rejected": out.rejected_rewards,
                "rewards/accuracies": (out.chosen_rewards > out.rejected_rewards).float(),
                "rewards/margins": out.chosen_rewards - out.rejected_rewards,
                "logps/chosen": out.chosen_logps, "logps/rejected": out.rejected_logps}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.pair_loss(batch)
        self.train_pairs.update(self.metrics(out))
        if ends_optimizer_step(self.trainer, batch_idx):
            log_pair_means(self, self.train_pairs, "train/", "train/loss")
        return out.losses.mean()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.val_pairs.update(self.metrics(self.pair_loss(batch)))

    def on_validation_epoch_start(self) -> None:
        self.val_pairs.reset()

    def on_validation_epoch_end(self) -> None:
        extra = {}
        if not self.trainer.sanity_checking and (exact := self.exact_match()) is not None:
            extra["val/exact_match"] = exact
        log_pair_means(self, self.val_pairs, "val/", "val/loss", extra)

    exact_match = SFTModule.exact_match  # greedy answers to the validation prompts against the chosen responses
