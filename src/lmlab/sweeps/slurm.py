"""SLURM glue for sweeps launched through submitit (`hydra/launcher=slurm`)."""

from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)


def skip_sacct_without_accounting() -> None:
    """Stop submitit polling `sacct` on a cluster where SLURM accounting is off.

    There every poll fails (sacct prints "Slurm accounting storage is disabled" and submitit warns
    "Bypassing sacct error" every few seconds) and tells submitit nothing: it learns that a job ended
    from the job's result file either way. One probe, one line instead of the noise.
    """
    if shutil.which("sacct") is None:
        return
    probe = subprocess.run(["sacct", "--noheader", "--allocations", "--jobs", "1"], capture_output=True, text=True)
    if probe.returncode == 0:
        return
    from lmlab.compat.submitit import skip_accounting_polls

    skip_accounting_polls()
    log.info("SLURM accounting is off here (sacct: %s); job ends are read from submitit's result files",
             probe.stderr.strip().splitlines()[0] if probe.stderr.strip() else f"exit {probe.returncode}")
