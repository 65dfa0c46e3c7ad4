"""The keys of the objective (`task.module.*`), its optimizer and its schedule: each key's type and range."""

from __future__ import annotations

from lmlab.modules.options import PREFERENCE_LOSSES, REFERENCE_FREE_LOSSES, SCHEDULERS, WSD_SHAPES
from lmlab.utils.key_checks import (
    KeyChecks,
    Select,
    betas,
    boolean,
    integer,
    non_negative_number,
    one_of,
    optional_boolean,
    positive_number,
    probability,
)

KEYS: KeyChecks = {
    "optimizer.lr": (positive_number, "must be a positive learning rate (e.g. optimizer.lr=3e-4)"),
    "optimizer.weight_decay": (non_negative_number, "must be a non-negative number"),
    "optimizer.betas": (betas, "must be two numbers in [0, 1) (e.g. optimizer.betas=[0.9,0.95])"),
    "optimizer.eps": (positive_number, "must be a positive number"),
    "optimizer.fused": (optional_boolean, "must be true or false (or null: torch's choice)"),
    "scheduler.name": one_of(SCHEDULERS),
    "scheduler.num_warmup_steps": (lambda v: integer(v, 0), "must be a non-negative integer"),
    "scheduler.on_budget_change": (lambda v: v in ("replan", "continue"), "must be replan or continue"),
    "scheduler.decay_fraction": (lambda v: non_negative_number(v) and v <= 1,
                                 "must be a fraction of the run between 0 and 1 (e.g. 0.2)"),
    "scheduler.decay_type": one_of(WSD_SHAPES),
    "scheduler.warmup_type": one_of(WSD_SHAPES),
    "scheduler.min_lr_ratio": (probability, "must be a fraction of optimizer.lr between 0 and 1 (e.g. 0.1)"),
    "task.module.loss_type": one_of(PREFERENCE_LOSSES),
    "task.module.beta": (positive_number, "must be a positive number (e.g. task.module.beta=0.1)"),
    "task.module.label_smoothing": (lambda v: non_negative_number(v) and v < 0.5, "must be in [0, 0.5)"),
    "task.module.precompute_reference": (boolean, "must be true or false"),
    "task.module.simpo_gamma": (non_negative_number, "must be a non-negative number (e.g. 0.5)"),
    "task.module.disable_dropout": (boolean, "must be true or false"),
    "task.module.fused_loss": (boolean, "must be true or false"),
    "task.module.whole_word_mask": (boolean, "must be true or false"),
    "task.module.mlm_probability": (lambda v: probability(v) and v > 0, "must be a probability in (0, 1]"),
    "task.module.mask_replace_prob": (probability, "must be a probability between 0 and 1"),
    "task.module.random_replace_prob": (probability, "must be a probability between 0 and 1"),
    "task.module.max_new_tokens": (lambda v: integer(v, 1), "must be a positive number of tokens"),
    "task.module.seed": (lambda v: integer(v, 0), "must be a non-negative integer"),
}


def problems(select: Select) -> list[str]:
    """A reference-free preference loss has no reference log-probabilities to precompute."""
    if select("task.module.precompute_reference") is True and select("task.module.loss_type") in REFERENCE_FREE_LOSSES:
        return [f"task.module.precompute_reference=true has nothing to precompute: task.module.loss_type="
                f"{select('task.module.loss_type')} uses no reference (set task.module.precompute_reference=false)"]
    return []
