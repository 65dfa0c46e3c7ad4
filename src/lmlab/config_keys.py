"""Which command-line keys change what a run trains: the one list that run names, W&B names, resume's
change report and `lmlab-compare`'s columns all use."""

from __future__ import annotations

import re

# Keys (or key prefixes) that say where a run lives, how it was launched, watched or saved, not what it
# trains: left out of run names, never reported as changes on resume, never a column of lmlab-compare.
UNTRAINED_KEYS = (
    "paths.", "hydra.", "run_name", "run_dir", "sweep_name", "resume", "ckpt_path", "print_config", "logger",
    "data.cache_dir", "data.num_workers",
    # callbacks that save, watch or report (early_stopping decides when training ends: it trains)
    "callbacks.model_checkpoint", "callbacks.last_checkpoint", "callbacks.preemption",
    "callbacks.lr_monitor", "callbacks.model_summary", "callbacks.progress_bar", "callbacks.speed_monitor",
    "callbacks.run_summary", "callbacks.optuna_pruning", "callbacks.export_hf",
    "callbacks.samples", "callbacks.early_stopping.verbose",
    # the trainer's output, logging and checkpoint writing
    "trainer.default_root_dir", "trainer.plugins", "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.log_every_n_steps", "trainer.num_sanity_val_steps",
)
# The budget: how long a run trains, not which run it is. Out of run names, so that `resume=force` with a
# larger budget continues the same run (resume reports a budget change in one line, not as a config change).
BUDGET_KEYS = ("trainer.max_steps", "trainer.max_epochs")
# What a continued run does with a new budget: out of run names (the relaunch that sets it must find the run)
# and said in resume's budget line, not reported as a config change.
BUDGET_POLICY_KEYS = ("scheduler.on_budget_change",)
# Out of run names but reported on resume and shown by lmlab-compare: `experiment` is already the run
# directory's parent; a run resumed on other devices, nodes or sharding must find its own directory again;
# how often and on how much it is validated changes its metrics, not its weights.
PLACEMENT_KEYS = ("experiment", "trainer.devices", "trainer.num_nodes", "trainer.accelerator", "trainer.strategy",
                  "trainer.val_check_interval", "trainer.check_val_every_n_epoch", "trainer.limit_val_batches",
                  "callbacks.downstream_eval")
OUT_OF_RUN_NAME = (*UNTRAINED_KEYS, *BUDGET_KEYS, *BUDGET_POLICY_KEYS, *PLACEMENT_KEYS)

# Hydra's override_dirname joins `key=value` items with ","; a value (a list) may hold commas itself.
_ITEM_START = re.compile(r",(?=[+~]*[A-Za-z_][\w.@/-]*=)")


def override_key(override: str) -> str:
    """`+data.x=1` → `data.x`: the key an override sets, without Hydra's add/delete prefixes."""
    return override.partition("=")[0].lstrip("+~")


def is_untrained(key: str) -> bool:
    """True for a key that does not change what is trained (see UNTRAINED_KEYS)."""
    return key.lstrip("+~").startswith(UNTRAINED_KEYS)


def is_config_change(key: str) -> bool:
    """Whether resume reports a changed `key` as a config change (the budget has its own line)."""
    return not key.startswith((*UNTRAINED_KEYS, *BUDGET_KEYS, *BUDGET_POLICY_KEYS))


def in_run_name(override: str) -> bool:
    """Whether an override shows in the run's default name (and W&B name)."""
    return not override_key(override).startswith(OUT_OF_RUN_NAME)


def split_override_dirname(override_dirname: str) -> list[str]:
    """Hydra's `job.override_dirname` (`k=v,k=[a,b]`) back into its `key=value` items."""
    return _ITEM_START.split(override_dirname) if override_dirname else []
