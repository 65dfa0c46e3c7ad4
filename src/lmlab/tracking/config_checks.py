"""The `logger.*` keys' checks: each tracker's switches (`logger.<tracker>.resume` is `resume`, checked there)."""

from __future__ import annotations

from lmlab.utils.key_checks import KeyChecks, Select, boolean, optional_boolean

KEYS: KeyChecks = {
    "logger.wandb.offline": (optional_boolean, "must be true or false (or null: decided from the key and network)"),
    "logger.wandb.log_model": (lambda v: v in (True, False, "all"),
                               "must be true, false or all (every checkpoint)"),
    "logger.mlflow.log_hf_export": (boolean, "must be true or false"),
    "logger.tensorboard.default_hp_metric": (boolean, "must be true or false"),
}


def problems(select: Select) -> list[str]:
    return []
