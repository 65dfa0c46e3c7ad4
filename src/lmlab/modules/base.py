"""What every objective shares: building the HF model, AdamW with weight-decay groups, warmup schedule."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import lightning as L
import torch
from hydra.utils import instantiate

from lmlab.data.tokenizer import special_token_ids
from lmlab.models import build_model
from lmlab.models.compile import compile_blocks
from lmlab.models.fp8 import convert_to_fp8
from lmlab.models.lora import added_token_ids, apply_peft, log_parameter_counts
from lmlab.modules.clipping import clip_gradients
from lmlab.modules.schedule import SCHEDULE_STEPS_KEY, hold_after, schedule_steps
from lmlab.optim import MUON

log = logging.getLogger(__name__)


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

    auto_class: ClassVar[Any]  # lmlab.contracts.TaskModule: what every objective declares
    peft_task_type: ClassVar[str | None] = None
    batch_keys: ClassVar[tuple[str, ...]] = ("input_ids",)

    def __init__(
        self,
        model: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        tokenizer=None,
        vocab_size: int | None = None,
        token_ids: Mapping[str, int | None] | None = None,
        peft: Mapping[str, Any] | None = None,
        **model_kwargs: Any,
    ):
        super().__init__()
        if tokenizer is not None:
            vocab_size, token_ids = len(tokenizer), special_token_ids(tokenizer)
        self.save_hyperparameters(ignore=["tokenizer"])
        self.hparams.update(vocab_size=vocab_size, token_ids=token_ids)
        self.tokenizer = tokenizer
        self.schedule_steps: int | None = None  # what the LR schedule was planned for (saved in checkpoints)
        self._resumed_schedule_steps: int | None = None
        self.model = build_model(model, self.auto_class, vocab_size, token_ids, **model_kwargs)
        if peft:  # LoRA: checkpoints may keep only the trainable parameters (lmlab.checkpoint.lora)
            self.model = apply_peft(self.model, peft, self.peft_task_type, added_token_ids(model, vocab_size))
            self.strict_loading = False

    def networks(self) -> list[torch.nn.Module]:
        """The trained model (lmlab.contracts.TaskModule): a module running a frozen network too adds it."""
        return [self.model]

    def on_fit_start(self) -> None:
        if self.hparams.get("peft"):
            log_parameter_counts(self)

    def configure_model(self) -> None:
        # Called by the Trainer only (checkpoints loaded for generation or export keep an eager model).
        # Parameter names, hence checkpoints, stay the same whatever is compiled.
        if self.hparams.model.get("fp8") and not getattr(self, "_fp8", False):  # before compiling: traced in FP8
            self._fp8 = True
            layers = convert_to_fp8(self.model, self.hparams.model.get("fp8_recipe", "tensorwise"))
            log.info("FP8 training: %d linear layers (torchao float8, %s scaling)", len(layers),
                     self.hparams.model.get("fp8_recipe", "tensorwise"))
        if (scope := self.hparams.model.get("compile")) and not getattr(self, "_compiled", False):
            self._compiled = True
            self.compile_model(scope, self.hparams.model.get("compile_mode"))

    def compile_model(self, scope: bool | str, mode: str | None) -> None:
        """`model.compile=true`: the whole model in place, output head and the model's own loss included;
        `regional`: each repeated block (`lmlab.models.compile`). CausalLMModule compiles its step instead."""
        if scope == "regional":
            compile_blocks(self.model, mode)
        else:
            self.model.compile(mode=mode)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        optimizer_cfg = dict(self.hparams.optimizer)
        weight_decay = optimizer_cfg.pop("weight_decay", 0.0)
        groups = weight_decay_groups(self.model, weight_decay)
        muon = optimizer_cfg.get("_target_") == MUON
        if self.hparams.model.get("mup"):  # hidden matrices at lr / m (lmlab.models.mup); Muon's at lr / √m
            from lmlab.models.mup import mup_param_groups
            from lmlab.optim.muon import mup_lr_divisor

            m = self.model.config.mup_width_multiplier
            divisor = mup_lr_divisor(m, optimizer_cfg.get("adjust_lr_fn")) if muon else m
            groups = mup_param_groups(self.model, groups, optimizer_cfg["lr"], divisor)
        if muon:  # the blocks' matrices to Muon, the rest to AdamW
            from lmlab.optim.muon import muon_groups

            groups = muon_groups(self.model, groups)
        optimizer = instantiate(optimizer_cfg, _partial_=True)(groups)
        if not self.hparams.scheduler:
            return optimizer
        scheduler_cfg = dict(self.hparams.scheduler)
        on_budget_change = scheduler_cfg.pop("on_budget_change", "replan")
        self.schedule_steps = schedule_steps(int(self.trainer.estimated_stepping_batches), on_budget_change,
                                             self._resumed_schedule_steps)
        scheduler = instantiate(scheduler_cfg, optimizer=optimizer, num_training_steps=self.schedule_steps)
        hold_after(scheduler, self.schedule_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.schedule_steps is not None:
            checkpoint[SCHEDULE_STEPS_KEY] = self.schedule_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_schedule_steps = checkpoint.get(SCHEDULE_STEPS_KEY)
