"""A model ladder at fixed compute: how many steps a run of a given model gets from its FLOPs (the resolver an
IsoFLOP preset uses), and which model of a finished ladder to train at a new budget."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from lmlab.config_keys import BUDGET_KEYS, is_untrained
from lmlab.scaling.params import count_params
from lmlab.utils.key_checks import integer, positive_number

if TYPE_CHECKING:
    from lmlab.scaling.points import Point

# Also set a run's budget: the IsoFLOP preset's FLOPs (conf/experiment/isoflop_ladder.yaml).
LADDER_BUDGET_KEYS = (*BUDGET_KEYS, "scaling.flops")


def isoflop_steps(flops: float, model_config: Mapping[str, Any] | DictConfig, block_size: int, batch_size: int,
                  global_batch_size: int | None = None, vocab_size: int | None = None,
                  count: str = "non_embedding") -> int:
    """`trainer.max_steps` that spends `flops` = 6·N·D on the model, N its `count` parameters ("non_embedding", or
    "total" with the `vocab_size` tokenizer's embeddings) and D the tokens of that many steps of
    `global_batch_size` (else `batch_size`) blocks of `block_size` tokens."""
    if not positive_number(flops):
        raise ValueError(f"scaling.flops={flops!r} must be a positive number of FLOPs (e.g. 1e17)")
    if isinstance(model_config, DictConfig):
        model_config = OmegaConf.to_container(model_config, resolve=True)
    params = count_params(model_config, vocab_size, count)
    tokens_per_step = int(block_size) * int(global_batch_size or batch_size)
    return max(1, round(float(flops) / (6 * params * tokens_per_step)))


def width_scaled_lr(lr: float, base_width: int | None, width: int) -> float:
    """The learning rate of a ladder's model of `width`: `lr`, tuned at `base_width`, times base_width / width (the
    standard parametrisation's best AdamW learning rate falls as 1/width: docs/scaling.md); `base_width` null gives
    every width `lr`."""
    if not positive_number(lr):
        raise ValueError(f"scaling.lr={lr!r} must be a positive learning rate")
    if base_width is None:
        return float(lr)
    for key, value in (("scaling.lr_base_width", base_width), ("the model's width", width)):
        if not integer(value, 1):
            raise ValueError(f"{key}={value!r} must be a positive whole number of hidden units")
    return float(lr) * base_width / width


def nearest_model(points: list[Point], params: float) -> Point | None:
    """The run whose N is nearest `params` (on a log scale) among runs launched from a command line."""
    candidates = [p for p in points if p.overrides and p.tokens_per_step]
    return min(candidates, key=lambda p: abs(math.log(p.params / params)), default=None)


def train_overrides(run: Point, tokens: float, flops: float) -> list[str]:
    """The run's own overrides with its budget replaced: `trainer.max_steps` for `tokens` (and `scaling.flops`
    for `flops`, when the run had it)."""
    kept = [f"{k}={v}" for k, v in run.overrides.items() if k not in LADDER_BUDGET_KEYS and not is_untrained(k)]
    if "scaling.flops" in run.overrides:
        kept.append(f"scaling.flops={flops:.3g}")
    return [*kept, f"trainer.max_steps={math.ceil(tokens / run.tokens_per_step)}"]
