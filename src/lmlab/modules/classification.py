"""`SequenceClassificationModule`: fine-tune a (pretrained) body with a fresh classification head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchmetrics import MeanMetric
from transformers import AutoModelForSequenceClassification

from lmlab.modules.base import HFModelModule
from lmlab.modules.metrics import classification_metrics, per_class_f1
from lmlab.modules.step_loss import StepLoss, log_step_loss


class SequenceClassificationModule(HFModelModule):
    """Sequence classification; logs loss, accuracy, macro F1 and MCC (torchmetrics) for train and validation,
    and at validation the F1 of each class (`val/f1/<label>`).

    `labels` (names, in id order) go into the model config as id2label/label2id, so an exported model and
    `lmlab-eval`'s predictions carry names. `model.init_from` (a pretraining run, checkpoint, HF directory
    or hub name) replaces `model.pretrained`: the body is loaded from it and the head starts fresh.
    """

    auto_class = AutoModelForSequenceClassification
    peft_task_type = "SEQ_CLS"
    batch_keys = ("input_ids", "attention_mask", "labels")

    def __init__(self, model: Mapping[str, Any], *args, labels: list[str], cache_dir: str = "outputs/.cache",
                 tokenizer=None, **kwargs):
        from lmlab.checkpoint.init_from import with_init_from

        model = with_init_from(model, cache_dir)
        for key in ("num_labels", "id2label", "label2id"):  # derived from labels (present when reloading hparams)
            kwargs.pop(key, None)
        labels = list(labels)
        super().__init__(model, *args, tokenizer=tokenizer, num_labels=len(labels), id2label=dict(enumerate(labels)),
                         label2id={name: i for i, name in enumerate(labels)}, **kwargs)
        # Hydra's instantiate turns the label maps into DictConfigs inside the model config; save_pretrained
        # needs plain dicts.
        self.model.config.id2label = dict(enumerate(labels))
        self.model.config.label2id = {name: i for i, name in enumerate(labels)}
        if tokenizer is not None and tokenizer.pad_token_id is not None:
            # a decoder (GPT-2, Llama) pools its last token that is not padding: it must know the collator's pad
            self.model.config.pad_token_id = tokenizer.pad_token_id
        self.train_metrics = classification_metrics(len(labels), "train/", sync_on_step=True)
        self.val_metrics = classification_metrics(len(labels), "val/")
        self.test_metrics = classification_metrics(len(labels), "test/")
        self.step_loss = StepLoss()
        # over every example of the split on every process (Lightning's mean of means would weigh ranks equally)
        self.eval_losses = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.val_f1_per_class = per_class_f1(len(labels))
        self.label_names = labels

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.model(**batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        output = self(batch)
        self.train_metrics(output.logits.argmax(dim=-1), batch["labels"])
        log_step_loss(self, self.step_loss, output.loss, len(batch["labels"]), batch_idx)
        self.log_dict(self.train_metrics)
        return output.loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        preds = self._evaluate(batch, self.val_metrics, "val/loss")
        self.val_f1_per_class.update(preds, batch["labels"])

    def on_validation_epoch_end(self) -> None:
        scores = self.val_f1_per_class.compute()  # over the whole split (and every rank)
        self.val_f1_per_class.reset()
        for name, score in zip(self.label_names, scores, strict=True):
            self.log(f"val/f1/{name}", score)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test/loss")

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics, loss_name: str) -> torch.Tensor:
        output = self(batch)
        preds = output.logits.argmax(dim=-1)
        metrics.update(preds, batch["labels"])
        mean_loss = self.eval_losses[loss_name.split("/")[0]]
        mean_loss.update(output.loss, weight=len(batch["labels"]))
        self.log(loss_name, mean_loss)
        self.log_dict(metrics, prog_bar=True)  # epoch-level: torchmetrics computes over the whole split
        return preds

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return {"probs": logits.float().softmax(dim=-1), "labels": batch.get("labels")}
