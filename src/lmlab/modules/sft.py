"""`SFTModule`: supervised fine-tuning of a causal LM on chat-formatted examples, loss on responses only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchmetrics import MeanMetric
from transformers import AutoModelForCausalLM

from lmlab.contracts import IGNORE_INDEX
from lmlab.models.generation import Sampling, generate
from lmlab.modules.base import HFModelModule
from lmlab.modules.step_loss import StepLoss, log_step_loss


def response_token_stats(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(summed cross-entropy, correct argmax predictions, count) over the tokens whose label is not -100."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != IGNORE_INDEX
    loss = torch.nn.functional.cross_entropy(logits[mask], labels[mask], reduction="sum")
    correct = (logits[mask].argmax(dim=-1) == labels[mask]).sum()
    return loss, correct, int(mask.sum())


class SFTModule(HFModelModule):
    """Instruction fine-tuning. Logs loss over response tokens; validation adds token accuracy over them and
    the exact match of greedy generations on the data module's `generation_examples` validation prompts.

    `model.init_from` (an lmlab CLM run or checkpoint, an HF directory or a hub name) gives the starting
    model, as for classification.
    """

    auto_class = AutoModelForCausalLM
    peft_task_type = "CAUSAL_LM"
    batch_keys = ("input_ids", "labels")

    def __init__(self, model: Mapping[str, Any], *args, cache_dir: str = "outputs/.cache",
                 max_new_tokens: int = 64, **kwargs):
        from lmlab.checkpoint.init_from import with_init_from

        model = with_init_from(model, cache_dir)
        super().__init__(model, *args, **kwargs)
        self.max_new_tokens = max_new_tokens
        self.val_loss = MeanMetric()
        self.val_token_accuracy = MeanMetric()
        self.step_loss = StepLoss()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss  # mean over the batch's response tokens (the model shifts labels)
        log_step_loss(self, self.step_loss, loss, (batch["labels"][:, 1:] != IGNORE_INDEX).sum(), batch_idx)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # packed: position_ids
        loss, correct, count = response_token_stats(logits, batch["labels"])
        self.val_loss.update(loss / count, weight=count)
        self.val_token_accuracy.update(correct / count, weight=count)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        metrics = {"val/loss": loss, "val/ppl": loss.exp(), "val/token_accuracy": self.val_token_accuracy.compute()}
        self.val_loss.reset()
        self.val_token_accuracy.reset()
        if not self.trainer.sanity_checking and (exact := self.exact_match()) is not None:
            metrics["val/exact_match"] = exact
        self.log_dict(metrics, prog_bar=True, sync_dist=False)

    def exact_match(self) -> float | None:
        """Share of the sampled validation prompts whose greedy completion equals the reference response."""
        examples = self.trainer.datamodule.generation_examples()  # lmlab.contracts.DataModule
        if not examples or self.tokenizer is None:
            return None
        sampling = Sampling(max_new_tokens=self.max_new_tokens)
        hits = 0
        for start in range(0, len(examples), 32):
            chunk = examples[start:start + 32]
            outputs = generate(self.model, self.tokenizer, [p for p, _ in chunk], sampling, chat=True)
            hits += sum(out.strip() == ref.strip() for out, (_, ref) in zip(outputs, chunk, strict=True))
        return hits / len(examples)
