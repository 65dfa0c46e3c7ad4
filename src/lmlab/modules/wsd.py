"""Warmup-stable-decay (WSD): warmup, a constant learning rate, then a decay over the run's last steps.

The stable phase does not depend on the budget, so one long run's stable checkpoints are the start of every
shorter budget's cool-down (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
Durations": a 1-sqrt decay over the last 20% matches a cosine schedule). `transformers.get_wsd_schedule` draws
the curve; this sizes its decay as a fraction of the run, so a budget override moves the decay with it.
"""

from __future__ import annotations

from transformers import get_wsd_schedule

from lmlab.errors import LmlabError
from lmlab.modules.options import WSD_SHAPES as SHAPES  # transformers' decay (and warmup) types


def decay_steps(num_training_steps: int, decay_fraction: float) -> int:
    """The decay's length: `decay_fraction` of the run, rounded to whole steps."""
    if not 0 <= decay_fraction <= 1:
        raise LmlabError(f"scheduler.decay_fraction={decay_fraction} must be a fraction of the run between 0 and 1")
    return round(decay_fraction * num_training_steps)


def wsd_schedule(optimizer, num_training_steps: int, num_warmup_steps: int = 0, decay_fraction: float = 0.2,
                 decay_type: str = "1-sqrt", warmup_type: str = "linear", min_lr_ratio: float = 0.0):
    """A `LambdaLR`: linear (or `warmup_type`) warmup to the optimizer's LR, constant, then `decay_type` down to
    `min_lr_ratio` × LR over the last `decay_fraction` of `num_training_steps`."""
    for key, value in (("decay_type", decay_type), ("warmup_type", warmup_type)):
        if value not in SHAPES:
            raise LmlabError(f"scheduler.{key}={value!r} must be one of {', '.join(SHAPES)}")
    decay = decay_steps(num_training_steps, decay_fraction)
    if num_warmup_steps + decay > num_training_steps:
        raise LmlabError(f"scheduler=wsd: {num_warmup_steps} warmup steps and a decay of {decay} steps "
                         f"({decay_fraction:g} of the run) do not fit in {num_training_steps} steps; lower "
                         "scheduler.num_warmup_steps or scheduler.decay_fraction, or raise trainer.max_steps")
    return get_wsd_schedule(optimizer, num_warmup_steps=num_warmup_steps, num_decay_steps=decay,
                            num_training_steps=num_training_steps, warmup_type=warmup_type, decay_type=decay_type,
                            min_lr_ratio=min_lr_ratio)
