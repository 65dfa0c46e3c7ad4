"""`validate_config`: every problem with lmlab's keys, gathered into one message, before anything runs.

Each feature owns its keys' checks beside its code (`KEYS` and `problems(select)` in `models/config_checks.py`,
`data/config_checks.py`, `modules/config_checks.py`, `optim/config_checks.py`, `parallel/fsdp_config.py`); this
module holds the run's own keys (seed, trainer, callbacks) and gathers them all. Each check names the key and its value
(`trainer.max_steps='abc' must be a positive integer`), so a mistyped override fails in a second with one line,
instead of a traceback deep inside Lightning after the data was prepared.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmlab.data import config_checks as data_checks
from lmlab.errors import LmlabError
from lmlab.models import config_checks as model_checks
from lmlab.modules import config_checks as module_checks
from lmlab.optim import config_checks as optimizer_checks
from lmlab.parallel import fsdp_config
from lmlab.utils.key_checks import KeyChecks, integer, non_negative_number, one_of, positive_number

FEATURES = (model_checks, data_checks, module_checks, optimizer_checks, fsdp_config)  # each: KEYS, problems(select)

# Lightning's accepted `precision` values (lightning.fabric.connector._PRECISION_INPUT), without its import.
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "64", "32", "16", "bf16")
# What lmlab trains on (Lightning also knows "tpu", which lmlab does not support).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# Callback keys that count steps, epochs or validations: positive integers (or null: off).
CALLBACK_INTERVALS = ("every_n_train_steps", "every_n_epochs", "patience", "refresh_rate", "window", "max_depth")

# The run's own keys: key → (check, what a good value is); a key absent from the config is not checked.
RUN_KEYS: KeyChecks = {
    "seed": (lambda v: integer(v, 0), "must be a non-negative integer"),
    "print_config": (lambda v: v is True or v is False or v == "sweep", "must be true, false or sweep"),
    "global_batch_size": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)"),
    "trainer.max_steps": (lambda v: integer(v, 1, (-1,)), "must be a positive integer (-1: no limit)"),
    "trainer.max_epochs": (lambda v: integer(v, 1, (-1, None)), "must be a positive integer (-1 or null: no limit)"),
    "trainer.log_every_n_steps": (lambda v: integer(v, 1), "must be a positive integer"),
    "trainer.accumulate_grad_batches": (lambda v: integer(v, 1), "must be a positive integer"),
    "trainer.val_check_interval": (lambda v: v is None or positive_number(v),
                                   "must be a positive number of steps (or a fraction of an epoch)"),
    "trainer.limit_train_batches": (lambda v: v is None or positive_number(v), "must be positive (or null)"),
    "trainer.limit_val_batches": (lambda v: v is None or non_negative_number(v),
                                  "must be a number of batches or a fraction (or null)"),
    "trainer.gradient_clip_val": (lambda v: v is None or non_negative_number(v),
                                  "must be a non-negative number (or null)"),
    "trainer.precision": (lambda v: str(v) in PRECISIONS, f"must be one of {', '.join(PRECISIONS[2:8])}"),
    "trainer.accelerator": one_of(ACCELERATORS),
    "callbacks.downstream_eval.every_n_steps": (lambda v: integer(v, 1), "must be a positive integer"),
}
# Every key `lmlab-train` checks one by one.
CHECKS: KeyChecks = {**RUN_KEYS, **{key: check for feature in FEATURES for key, check in feature.KEYS.items()}}
# `lmlab-eval`'s keys.
EVAL_CHECKS: KeyChecks = {
    "split": (lambda v: isinstance(v, str) and bool(v.strip()), "must be a split name (train, validation, test)"),
    "batch_size": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null: the run's)"),
    "accelerator": one_of(ACCELERATORS),
    "output_dir": (lambda v: v is None or (isinstance(v, str) and bool(v.strip())), "must be a directory (or null)"),
    "pairs": (lambda v: v is None or (isinstance(v, str) and os.path.exists(os.path.expanduser(v))),
              "must be an existing preference file or directory (or null: the run's own pairs)"),
}


def _callback_checks(cfg: DictConfig) -> KeyChecks:
    """The interval keys of every callback the config names (`callbacks.<name>.every_n_train_steps`, ...)."""
    callbacks = OmegaConf.select(cfg, "callbacks", default=None, throw_on_resolution_failure=False)
    if not OmegaConf.is_dict(callbacks):
        return {}
    return {f"callbacks.{name}.{key}": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)")
            for name, node in callbacks.items_ex(resolve=False) if OmegaConf.is_dict(node)
            for key in CALLBACK_INTERVALS if key in node}


def _cross_field_problems(cfg: DictConfig) -> list[str]:
    """Each feature's rules between keys, and the trainer's own."""

    def select(key: str) -> object:
        return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)

    problems = [problem for feature in FEATURES for problem in feature.problems(select)]
    interval, every_epochs = select("trainer.val_check_interval"), select("trainer.check_val_every_n_epoch")
    if isinstance(interval, float) and every_epochs is None:
        problems.append(f"trainer.val_check_interval={interval} is a fraction of an epoch, which needs "
                        "trainer.check_val_every_n_epoch=1 (or give a number of steps: trainer.val_check_interval=25)")
    return problems


def config_problems(cfg: DictConfig, checks: KeyChecks | None = None) -> list[str]:
    """One `<key>=<value> <what is wrong>` line for each problem: mandatory values missing, bad values.

    `checks` defaults to `lmlab-train`'s (`CHECKS`, every callback's intervals, each feature's cross-field rules)."""
    problems = [f"{key}=??? is a mandatory value: set it on the command line ({key}=...)"
                for key in sorted(OmegaConf.missing_keys(cfg))]
    missing = set(OmegaConf.missing_keys(cfg))
    if checks is None:
        checks = {**CHECKS, **_callback_checks(cfg)}
        problems += _cross_field_problems(cfg)
    for key, (check, expected) in checks.items():
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


def validate_config(cfg: DictConfig, checks: KeyChecks | None = None) -> None:
    """Raise one `LmlabError` listing every problem `config_problems` finds."""
    if problems := config_problems(cfg, checks):
        raise LmlabError("; ".join(problems))
