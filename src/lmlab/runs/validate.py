"""`validate_config`: every problem with lmlab's keys, gathered into one message, before anything runs.

Each feature owns its keys' checks beside its code (`KEYS` and `problems(select)` in `models/config_checks.py`,
`data/config_checks.py`, `modules/config_checks.py`, `optim/config_checks.py`, `parallel/fsdp_config.py`,
`checkpoint/config_checks.py`, `evaluation/config_checks.py`, `tracking/config_checks.py`,
`callbacks/config_checks.py`); this module holds the run's own keys (seed, trainer, monitor) and gathers
them all (`tests/unit/test_key_coverage.py`: every typed key of every config group is checked by one of them).
Each check names the key and its value (`trainer.max_steps='abc' must be a positive integer`), so a mistyped
override fails in a second with one line, instead of a traceback deep inside Lightning after the data was prepared.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmlab.callbacks import config_checks as callback_checks
from lmlab.checkpoint import config_checks as checkpoint_checks
from lmlab.data import config_checks as data_checks
from lmlab.errors import LmlabError
from lmlab.evaluation import config_checks as evaluation_checks
from lmlab.models import config_checks as model_checks
from lmlab.modules import config_checks as module_checks
from lmlab.optim import config_checks as optimizer_checks
from lmlab.parallel import fsdp_config
from lmlab.tracking import config_checks as tracking_checks
from lmlab.utils.key_checks import (
    KeyChecks,
    boolean,
    expand,
    integer,
    key_problems,
    non_negative_number,
    one_of,
    positive_number,
)

FEATURES = (model_checks, data_checks, module_checks, optimizer_checks, fsdp_config, checkpoint_checks,
            evaluation_checks, tracking_checks, callback_checks)  # each: KEYS, problems(select)

# Lightning's accepted `precision` values (lightning.fabric.connector._PRECISION_INPUT), without its import.
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "64", "32", "16", "bf16")
# What lmlab trains on (Lightning also knows "tpu", which lmlab does not support).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def _devices(value: object) -> bool:
    """Lightning's `devices`: a count (-1: all), auto, or the devices' indices (a list or "0,1")."""
    if isinstance(value, str):
        return value in ("auto", "-1") or all(part.strip().isdigit() for part in value.split(","))
    if OmegaConf.is_list(value) or isinstance(value, list | tuple):
        return len(value) > 0 and all(integer(v, 0) for v in value)
    return integer(value, 1, (-1,))


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
    "trainer.devices": (_devices, "must be a number of devices (-1: all), auto, or their indices (e.g. [0,1])"),
    "trainer.num_nodes": (lambda v: integer(v, 1), "must be a positive integer"),
    "trainer.check_val_every_n_epoch": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)"),
    "trainer.num_sanity_val_steps": (lambda v: integer(v, -1), "must be an integer of at least -1 (-1: all)"),
    "trainer.deterministic": (lambda v: v in (True, False, None, "warn"), "must be true, false or warn"),
    "trainer.enable_progress_bar": (boolean, "must be true or false"),
    "trainer.enable_model_summary": (boolean, "must be true or false"),
    "trainer.strategy.find_unused_parameters": (boolean, "must be true or false"),
    "trainer.strategy.gradient_as_bucket_view": (boolean, "must be true or false"),
    "monitor.mode": one_of(callback_checks.METRIC_MODES),
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
    **{key: check for key, check in evaluation_checks.HARNESS_KEYS.items() if key != "batch_size"},
}


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


def checks_for(cfg: DictConfig) -> KeyChecks:
    """Every key check `lmlab-train` makes on `cfg` (`CHECKS`), `*` parts expanded to the names `cfg` holds."""
    return expand(CHECKS, cfg)


def config_problems(cfg: DictConfig, checks: KeyChecks | None = None) -> list[str]:
    """One `<key>=<value> <what is wrong>` line for each problem: mandatory values missing, bad values.

    `checks` defaults to `lmlab-train`'s (`CHECKS`, each feature's cross-field rules)."""
    missing = _missing_keys(cfg)
    problems = [f"{key}=??? is a mandatory value: set it on the command line ({key}=...)" for key in sorted(missing)]
    if checks is None:
        checks = checks_for(cfg)
        problems += _cross_field_problems(cfg)
    return problems + key_problems(cfg, checks, skip=missing)


def _missing_keys(cfg: DictConfig) -> set[str]:
    """`OmegaConf.missing_keys`, which resolves every interpolation on its way: one that raises (a resolver's
    `ValueError`) is then reported by the key check of the key that holds it, not as a traceback."""
    try:
        return set(OmegaConf.missing_keys(cfg))
    except OmegaConfBaseException:
        return _unresolved_missing(cfg)


def _unresolved_missing(node: DictConfig, prefix: str = "") -> set[str]:
    """The `???` values under `node`, found without resolving anything."""
    found = set()
    for key in node:
        child = node._get_node(key)
        if OmegaConf.is_dict(child):
            found |= _unresolved_missing(child, f"{prefix}{key}.")
        elif child._is_missing():
            found.add(f"{prefix}{key}")
    return found


def validate_config(cfg: DictConfig, checks: KeyChecks | None = None) -> None:
    """Raise one `LmlabError` listing every problem `config_problems` finds."""
    if problems := config_problems(cfg, checks):
        raise LmlabError("; ".join(problems))
