"""The keys of a sweep (`hydra.sweeper.*`, `hydra.launcher.*`): each key's type and range, every `_target_`
importable, the search space parsed. Checked when `lmlab-train -m` composes each swept value
(`lmlab.config.check_overrides`), so a bad value is one line before the sweep directory or any job exists.

Keys typed by a launcher's own schema (joblib's, submitit's dataclasses) are refused by OmegaConf at compose with
a wrong type; their ranges are checked here.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf

from lmlab.sweeps.search import DIRECTIONS, search_space
from lmlab.utils.key_checks import (
    KeyChecks,
    boolean,
    integer,
    key_problems,
    one_of,
    positive_number,
    probability,
)


def _count(minimum: int, allowed: tuple = ()) -> tuple:
    """A check that the value is an integer of at least `minimum` (or one of `allowed`), and its message."""
    word = {0: "a non-negative", 1: "a positive"}[minimum]
    return (lambda v: integer(v, minimum, allowed)), f"must be {word} integer{' (or null)' * (None in allowed)}"


def _gpus(value: object) -> bool:
    """`hydra.launcher.gpus` of `local_gpus`: null, a GPU index or a list of them ("0,1,2,3")."""
    return value is None or integer(value, 0) or (
        isinstance(value, str) and all(part.strip().isdigit() for part in value.split(",")))


KEYS: KeyChecks = {
    # lmlab's Optuna sweeper (conf/hydra/sweeper/optuna.yaml) and Hydra's basic one
    "hydra.sweeper.n_trials": (lambda v: integer(v, 1), "must be a positive number of trials"),
    "hydra.sweeper.n_jobs": _count(1),
    "hydra.sweeper.max_failure_rate": (probability, "must be a fraction of the trials between 0 and 1 (e.g. 0.25)"),
    "hydra.sweeper.objectives.*": one_of(tuple(DIRECTIONS)),
    "hydra.sweeper.sampler.seed": _count(0, (None,)),
    "hydra.sweeper.sampler.n_startup_trials": _count(0),
    "hydra.sweeper.pruner.n_startup_trials": _count(0),
    "hydra.sweeper.pruner.n_warmup_steps": _count(0),
    "hydra.sweeper.max_batch_size": _count(1, (None,)),
    # the launchers: joblib's (hydra/launcher=parallel), local_gpus', submitit's (hydra/launcher=slurm)
    "hydra.launcher.n_jobs": (lambda v: v is None or (integer(v, -2 ** 31) and v != 0),
                              "must be a number of jobs (-1: one per CPU core; null: as many as fit)"),
    "hydra.launcher.backend": one_of((None, "loky", "multiprocessing", "threading")),
    "hydra.launcher.prefer": one_of((None, "processes", "threads")),
    "hydra.launcher.require": one_of((None, "sharedmem")),
    "hydra.launcher.verbose": _count(0),
    "hydra.launcher.timeout": (lambda v: v is None or positive_number(v), "must be a positive number of seconds"),
    "hydra.launcher.batch_size": (lambda v: v == "auto" or integer(v, 1), "must be auto or a positive integer"),
    "hydra.launcher.mmap_mode": one_of((None, "r+", "r", "w+", "c")),
    "hydra.launcher.max_nbytes": (lambda v: v is None or integer(v, 0) or bool(re.fullmatch(r"\d+[KMG]?", str(v))),
                                  "must be a number of bytes, e.g. 1M (or null: no memory mapping)"),
    "hydra.launcher.gpus": (_gpus, "must be GPU indices, e.g. \"0,1,2,3\" (or null: every visible GPU)"),
    **{f"hydra.launcher.{key}": _count(1) for key in ("nodes", "tasks_per_node", "timeout_min", "array_parallelism")},
    **{f"hydra.launcher.{key}": _count(1, (None,))
       for key in ("cpus_per_task", "gpus_per_node", "mem_gb", "cpus_per_gpu", "gpus_per_task")},
    **{f"hydra.launcher.{key}": _count(0) for key in ("max_num_timeout", "signal_delay_s")},
    "hydra.launcher.stderr_to_stdout": (boolean, "must be true or false"),
}


def importable(path: str) -> bool:
    """Whether `a.b.C` is an object Python can import: the longest importable module, then attributes."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            node = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(node, attribute):
                return False
            node = getattr(node, attribute)
        return True
    return False


def _targets(node: object, path: str):
    if OmegaConf.is_dict(node):
        for key in node:
            value = node._get_node(key)._value()
            if key == "_target_" and isinstance(value, str):
                yield f"{path}._target_", value
            else:
                yield from _targets(node._get_node(key), f"{path}.{key}")


def sweep_problems(cfg: DictConfig) -> list[str]:
    """One line per problem of the composed config's (`return_hydra_config=True`) sweeper and launcher: a
    `_target_` that imports nothing (a misspelt Optuna sampler), a key's type or range, a search space that is not
    Hydra's grammar."""
    problems = [f"{key}={target!r} names nothing importable (a module path and a class, e.g. "
                "optuna.samplers.TPESampler)"
                for group in ("sweeper", "launcher")
                for key, target in _targets(OmegaConf.select(cfg, f"hydra.{group}"), f"hydra.{group}")
                if not importable(target)]
    problems += key_problems(cfg, KEYS)
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None)
    if OmegaConf.is_dict(params) and params:
        try:
            search_space({str(k): str(v) for k, v in params.items()}, [])
        except Exception as error:  # noqa: BLE001 - Hydra's parser and Optuna raise their own types
            problems.append(f"hydra.sweeper.params: {str(error).splitlines()[0]}")
    return problems


def check_sweep(cfg: DictConfig) -> None:
    """Raise one `ValueError` listing every problem `sweep_problems` finds."""
    if problems := sweep_problems(cfg):
        raise ValueError("; ".join(problems))
