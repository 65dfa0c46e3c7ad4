"""`validate_config`: every problem with lmlab's own keys, gathered into one message, before anything runs.

Each check names the key and its value (`trainer.max_steps='abc' must be an integer`), so a mistyped
override fails in a second with one line, instead of a traceback deep inside Lightning after the data
was prepared.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmlab.errors import LmlabError

# Lightning's accepted `precision` values (lightning.fabric.connector._PRECISION_INPUT), without its import.
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "64", "32", "16", "bf16")
ACTIVATION_CHECKPOINTING = ("none", "full", "selective")  # lmlab.models.blocks
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
FP8_RECIPES = ("tensorwise", "rowwise", "rowwise_with_gw_hp")  # torchao's recipe names (lmlab.models.fp8)
DECODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")


def _int(value: object, minimum: int, allowed: tuple = ()) -> bool:
    return value in allowed or (isinstance(value, int) and not isinstance(value, bool) and value >= minimum)


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _codec(value: object) -> bool:
    try:
        codecs.lookup(str(value))
    except LookupError:
        return False
    return True


# key → (check, what a good value is); a key absent from the config is not checked.
CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "seed": (lambda v: _int(v, 0), "must be a non-negative integer"),
    "global_batch_size": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)"),
    "trainer.max_steps": (lambda v: _int(v, 1, (-1,)), "must be a positive integer (-1: no limit)"),
    "trainer.max_epochs": (lambda v: _int(v, 1, (-1, None)), "must be a positive integer (-1 or null: no limit)"),
    "trainer.log_every_n_steps": (lambda v: _int(v, 1), "must be a positive integer"),
    "trainer.accumulate_grad_batches": (lambda v: _int(v, 1), "must be a positive integer"),
    "trainer.val_check_interval": (lambda v: v is None or _positive_number(v),
                                   "must be a positive number of steps (or a fraction of an epoch)"),
    "trainer.limit_train_batches": (lambda v: v is None or _positive_number(v), "must be positive (or null)"),
    "trainer.limit_val_batches": (lambda v: v is None or _non_negative_number(v),
                                  "must be a number of batches or a fraction (or null)"),
    "trainer.gradient_clip_val": (lambda v: v is None or _non_negative_number(v),
                                  "must be a non-negative number (or null)"),
    "trainer.precision": (lambda v: str(v) in PRECISIONS, f"must be one of {', '.join(PRECISIONS[2:8])}"),
    "data.batch_size": (lambda v: _int(v, 1), "must be a positive integer"),
    "data.eval_batch_size": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.block_size": (lambda v: _int(v, 2, (None,)), "must be an integer of at least 2 (an input and its label)"),
    "data.max_length": (lambda v: _int(v, 2, (None,)), "must be an integer of at least 2"),
    "data.vocab_size": (lambda v: _int(v, 1), "must be a positive integer"),
    "data.max_documents": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.num_workers": (lambda v: _int(v, 0), "must be a non-negative integer"),
    "data.source.encoding": (_codec, "is not a text encoding Python knows (e.g. utf-8, latin-1)"),
    "data.source.errors": (lambda v: v in DECODE_ERRORS, f"must be one of {', '.join(DECODE_ERRORS)}"),
    "model.activation_checkpointing": (lambda v: v in ACTIVATION_CHECKPOINTING,
                                       f"must be one of {', '.join(ACTIVATION_CHECKPOINTING)}"),
    "model.activation_checkpointing_every": (lambda v: _int(v, 1), "must be a positive integer"),
    "model.bias": (lambda v: isinstance(v, bool), "must be true or false"),
    "model.compile": (lambda v: v in (False, True, "regional"),
                      "must be false, true (the whole step) or regional (each block; lmlab.models.compile)"),
    "model.compile_mode": (lambda v: v in COMPILE_MODES, f"must be one of {', '.join(map(str, COMPILE_MODES))}"),
    "model.fp8_recipe": (lambda v: v in FP8_RECIPES, f"must be one of {', '.join(FP8_RECIPES)}"),
    "optimizer.lr": (_positive_number, "must be a positive learning rate (e.g. optimizer.lr=3e-4)"),
    "optimizer.weight_decay": (_non_negative_number, "must be a non-negative number"),
    "scheduler.num_warmup_steps": (lambda v: _int(v, 0), "must be a non-negative integer"),
    "scheduler.on_budget_change": (lambda v: v in ("replan", "continue"), "must be replan or continue"),
}


def config_problems(cfg: DictConfig) -> list[str]:
    """One `<key>=<value> <what is wrong>` line for each problem: mandatory values missing, bad values."""
    problems = [f"{key}=??? is a mandatory value: set it on the command line ({key}=...)"
                for key in sorted(OmegaConf.missing_keys(cfg))]
    missing = set(OmegaConf.missing_keys(cfg))
    for key, (check, expected) in CHECKS.items():
        if key in missing or OmegaConf.select(cfg, key, default="<absent>", throw_on_resolution_failure=False) \
                == "<absent>":
            continue
        try:
            value = OmegaConf.select(cfg, key, throw_on_missing=True)
        except OmegaConfBaseException as e:
            problems.append(f"{key} could not be resolved: {str(e).splitlines()[0]}")
            continue
        if not check(value):
            problems.append(f"{key}={value!r} {expected}")
    return problems


def validate_config(cfg: DictConfig) -> None:
    """Raise one `LmlabError` listing every problem `config_problems` finds."""
    if problems := config_problems(cfg):
        raise LmlabError("; ".join(problems))
