"""Which command-line keys change what a run trains: the one list that run names, W&B names, resume's
change report and `lmlab-compare`'s columns all use."""

from __future__ import annotations

import re

# Keys (or key prefixes) that say where a run lives, how it was launched or how it is watched, not what
# it trains: left out of run names, never reported as changes on resume, never a column of lmlab-compare.
UNTRAINED_KEYS = ("paths.", "hydra.", "run_name", "run_dir", "sweep_name", "resume", "ckpt_path", "logger",
                  "data.cache_dir", "data.num_workers", "callbacks.progress_bar", "callbacks.model_summary",
                  "trainer.enable_progress_bar", "trainer.enable_model_summary")
# The budget: how long a run trains, not which run it is. Out of run names, so that `resume=force` with a
# larger budget continues the same run (resume reports a budget change in one line, not as a config change).
BUDGET_KEYS = ("trainer.max_steps", "trainer.max_epochs")
# Also out of run names: `experiment` is already the run directory's parent (experiment_name), and a run
# resumed on another number of devices or nodes must find its own directory again.
OUT_OF_RUN_NAME = (*UNTRAINED_KEYS, *BUDGET_KEYS, "experiment", "trainer.devices", "trainer.num_nodes")

# Hydra's override_dirname joins `key=value` items with ","; a value (a list) may hold commas itself.
_ITEM_START = re.compile(r",(?=[+~]*[A-Za-z_][\w.@/-]*=)")


def override_key(override: str) -> str:
    """`+data.x=1` → `data.x`: the key an override sets, without Hydra's add/delete prefixes."""
    return override.partition("=")[0].lstrip("+~")


def is_untrained(key: str) -> bool:
    """True for a key that does not change what is trained (see UNTRAINED_KEYS)."""
    return key.lstrip("+~").startswith(UNTRAINED_KEYS)


def in_run_name(override: str) -> bool:
    """Whether an override shows in the run's default name (and W&B name)."""
    return not override_key(override).startswith(OUT_OF_RUN_NAME)


def split_override_dirname(override_dirname: str) -> list[str]:
    """Hydra's `job.override_dirname` (`k=v,k=[a,b]`) back into its `key=value` items."""
    return _ITEM_START.split(override_dirname) if override_dirname else []
