"""What every objective shares: building the HF model, AdamW with weight-decay groups, warmup schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import lightning as L
import torch
from hydra.utils import instantiate

from lmlab.data.tokenizer import special_token_ids
from lmlab.models import build_model
from lmlab.runs.position import restore_position, save_position


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices (linear and embedding weights); never biases or norm gains (all 1-D parameters)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class HFModelModule(L.LightningModule):
    """Base LightningModule over a `transformers` model; subclasses add the training/validation steps.

    `optimizer` and `scheduler` are config nodes (`_target_` …) completed here with the parameters and
    the number of training steps, which only the Trainer knows.
    """

    auto_class: ClassVar[Any]

    def __init__(
        self,
        model: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        tokenizer=None,
        vocab_size: int | None = None,
        token_ids: Mapping[str, int | None] | None = None,
        **model_kwargs: Any,
    ):
        super().__init__()
        if tokenizer is not None:
            vocab_size, token_ids = len(tokenizer), special_token_ids(tokenizer)
        self.save_hyperparameters(ignore=["tokenizer"])
        self.hparams.update(vocab_size=vocab_size, token_ids=token_ids)
        self.tokenizer = tokenizer
        self.model = build_model(model, self.auto_class, vocab_size, token_ids, **model_kwargs)

    def configure_model(self) -> None:
        # `model.compile=true`: compile the network body in place (parameter names, hence checkpoints,
        # stay the same); the output head is a single matmul and the fused loss calls the body directly.
        if self.hparams.model.get("compile") and not getattr(self, "_compiled", False):
            self.model.base_model.compile()
            self._compiled = True

    def configure_optimizers(self):
        optimizer_cfg = dict(self.hparams.optimizer)
        weight_decay = optimizer_cfg.pop("weight_decay", 0.0)
        optimizer = instantiate(optimizer_cfg, _partial_=True)(weight_decay_groups(self.model, weight_decay))
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler, optimizer=optimizer,
                                num_training_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_position(self.trainer, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # before Lightning restores its loops from the same dict: counters for this launch's processes
        if self._trainer is not None:  # none in `load_from_checkpoint` (lmlab-eval): weights only, no loops
            restore_position(self.trainer, checkpoint)
