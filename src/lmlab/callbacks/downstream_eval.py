"""`callbacks=downstream_eval`: lm-eval tasks at the first validation of every N training steps and at the
last step's, logged beside `val/loss` as `eval/<task>/<metric>` in metrics.csv and W&B.

The model is scored as its export would be (LoRA merged into a copy, vocabulary pad rows sliced off) through
the same code as `lmlab-eval` (`lmlab.evaluation.harness`), so the figures at step N equal `lmlab-eval` on
step N's checkpoint. Rank 0 evaluates and broadcasts the figures: every rank logs the same, and the run's
process count does not change them. The evaluation runs before the step's checkpoint is written (Lightning
calls checkpoint callbacks last), so a run killed in between resumes from an earlier checkpoint, drops the
rows logged since and evaluates step N again: each point is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import lightning as L
import torch

from lmlab.evaluation.harness import HarnessSpec, evaluate_model, task_metrics

log = logging.getLogger(__name__)


class DownstreamEval(L.Callback):
    def __init__(self, tasks: Sequence[str], every_n_steps: int, include_path: Sequence[str] = (),
                 num_fewshot: int | None = None, limit: int | float | None = None, batch_size: int = 16):
        self.spec = HarnessSpec(tasks=list(tasks), include_path=list(include_path), num_fewshot=num_fewshot,
                                limit=limit, batch_size=batch_size, bootstrap_iters=0)
        self.every_n_steps = every_n_steps
        self.last_step = 0  # the step evaluated last, or resumed from

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # what the config alone decides (every_n_steps, the tasks) lmlab-train checked before claiming the run
        from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy

        from lmlab.errors import LmlabError

        if pl_module.tokenizer is None or not pl_module.model.can_generate():
            raise LmlabError("callbacks.downstream_eval scores causal language models (task=clm or sft)")
        if isinstance(trainer.strategy, FSDPStrategy | ModelParallelStrategy):  # rank 0 holds a shard, not the model
            raise LmlabError("callbacks.downstream_eval does not run under FSDP: score the checkpoints with "
                             "lmlab-eval instead")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last_step = trainer.global_step

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        last = trainer.max_steps > 0 and step >= trainer.max_steps
        if trainer.sanity_checking or step == self.last_step or not (
                step // self.every_n_steps > self.last_step // self.every_n_steps or last):
            return
        self.last_step = step
        metrics = self.evaluate(pl_module) if trainer.is_global_zero else None
        metrics = trainer.strategy.broadcast(metrics, src=0)
        log.info("downstream eval at step %d: %s", step, "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        # float64: metrics.csv holds lm-eval's figures to the last digit; in the validation row of this step
        pl_module.log_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in metrics.items()}, sync_dist=False)

    def evaluate(self, pl_module: L.LightningModule) -> dict[str, float]:
        from lmlab.models.lora import merged
        from lmlab.models.vocab_padding import unpadded

        model = unpadded(merged(pl_module.model), pl_module.hparams.get("vocab_size"))
        results = evaluate_model(model, pl_module.tokenizer, self.spec)
        return {f"eval/{task}/{metric}": value
                for task, values in task_metrics(results).items() for metric, value in values.items()}
