"""Lightning's DDP launcher under Hydra: every process of a run works in that run's one directory.

Lightning starts ranks 1..N-1 by re-running the command line with `hydra.run.dir` fixed. In a
multirun that command line still holds `-m` and the sweep, so every child would run the whole sweep
in a new sweep directory. The children here get this job's own overrides instead (one value each), in
run mode, in this job's directory, logging to the console only (rank 0 writes the run's log file).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """Command line and working directory of DDP child `local_rank` for the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    import __main__

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, sys.argv[0]]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    # quoted: run names hold `=` and `,`, which Hydra would otherwise read as an override and a sweep
    command += [*hydra_cfg.overrides.task, f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
                f"hydra.job.name={hydra_cfg.job.name}_ddp_process_{local_rank}", "hydra.output_subdir=null",
                "hydra/job_logging=stdout"]
    return command, get_original_cwd()


def use_job_overrides_for_ddp_children() -> None:
    """Make Lightning's subprocess launcher start DDP children with `child_command` (when Hydra started us)."""
    from hydra.core.hydra_config import HydraConfig

    from lmlab.compat.lightning import set_ddp_child_command

    if HydraConfig.initialized():
        set_ddp_child_command(child_command)
