"""A model ladder at fixed compute: how many steps a run of a given model gets from its FLOPs (the resolver an
IsoFLOP preset uses), and which model of a finished ladder to train at a new budget."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from lmlab.config_keys import BUDGET_KEYS, is_untrained
from lmlab.scaling.params import WIDTH_KEYS, architecture, count_params
from lmlab.utils.key_checks import integer, positive_number

if TYPE_CHECKING:
    from lmlab.scaling.points import Point

# Also set a run's budget: the IsoFLOP preset's FLOPs (conf/experiment/isoflop_ladder.yaml).
LADDER_BUDGET_KEYS = (*BUDGET_KEYS, "scaling.flops")


def check_flops(flops: float) -> None:
    """The one line a ladder's resolvers raise for a budget that is not a positive number."""
    if not positive_number(flops):
        raise ValueError(f"scaling.flops={flops!r} must be a positive number of FLOPs (e.g. 1e17)")


def isoflop_steps(flops: float, model_config: Mapping[str, Any] | DictConfig, block_size: int, batch_size: int,
                  global_batch_size: int | None = None, vocab_size: int | None = None,
                  count: str = "non_embedding") -> int:
    """`trainer.max_steps` that spends `flops` = 6·N·D on the model, N its `count` parameters ("non_embedding", or
    "total" with the `vocab_size` tokenizer's embeddings) and D the tokens of that many steps of
    `global_batch_size` (else `batch_size`) blocks of `block_size` tokens."""
    check_flops(flops)
    if isinstance(model_config, DictConfig):
        model_config = OmegaConf.to_container(model_config, resolve=True)
    params = count_params(model_config, vocab_size, count)
    tokens_per_step = int(block_size) * int(global_batch_size or batch_size)
    return max(1, round(float(flops) / (6 * params * tokens_per_step)))


def isoflop_width(flops: float, tokens_per_param: float, vocab_size: int | None, count: str, *,
                  _parent_: DictConfig) -> int:
    """The width of the model config node `_parent_` (a GPT-2's n_embd, a Llama's hidden_size) whose `count`
    parameters N come nearest (on a log scale) to sqrt(flops / (6·tokens_per_param)): the model that spends `flops`
    on `tokens_per_param` tokens per parameter (Hoffmann et al. 2022's ~20). Widths are multiples of the heads, so
    the ratio a run gets is near, not at, the one asked for; `isoflop_steps` spends the budget exactly."""
    check_flops(flops)
    if not positive_number(tokens_per_param):
        raise ValueError(f"scaling.tokens_per_param={tokens_per_param!r} must be a positive number of tokens per "
                         "parameter (e.g. 20)")
    config = {key: _parent_[key] for key in _parent_ if key not in WIDTH_KEYS}
    key = WIDTH_KEYS[architecture(config) == "llama"]
    heads = int(config.get("num_attention_heads" if key == "hidden_size" else "n_head", 1))
    target = math.sqrt(float(flops) / (6 * float(tokens_per_param)))
    best, miss = heads, math.inf
    for width in range(heads, 2 ** 16 + 1, heads):  # N grows with the width: stop once past the target
        log_ratio = math.log(count_params({**config, key: width}, vocab_size, count) / target)
        if abs(log_ratio) < miss:
            best, miss = width, abs(log_ratio)
        if log_ratio > 0:
            break
    return best


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


def train_overrides(run: Point, flops: float, params: float) -> list[str]:
    """The run's own overrides with its budget replaced by `flops`. A run whose width the preset derived from
    scaling.tokens_per_param gets the ratio of the compute-optimal `params` (the preset then picks the width nearest
    them, and the steps); any other gets `trainer.max_steps` that spend `flops` on its own model (and `scaling.flops`,
    when the run had it)."""
    derived = run.tokens_per_param is not None
    replaced = (*LADDER_BUDGET_KEYS, "scaling.tokens_per_param") if derived else LADDER_BUDGET_KEYS
    kept = [f"{k}={v}" for k, v in run.overrides.items() if k not in replaced and not is_untrained(k)]
    if derived:
        return [*kept, f"scaling.flops={flops:.3g}", f"scaling.tokens_per_param={flops / (6 * params * params):.3g}"]
    if "scaling.flops" in run.overrides:
        kept.append(f"scaling.flops={flops:.3g}")
    return [*kept, f"trainer.max_steps={math.ceil(flops / (6 * run.params) / run.tokens_per_step)}"]
