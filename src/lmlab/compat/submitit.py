"""submitit's private names that lmlab uses.

- `skip_accounting_polls`: `SlurmInfoWatcher._make_command` returning None makes submitit skip its `sacct`
  polls, where SLURM accounting is off (sweeps/slurm.py).
"""

from __future__ import annotations

CHECKED_VERSION = "1.5.4"


def skip_accounting_polls() -> None:
    from submitit.slurm.slurm import SlurmInfoWatcher

    SlurmInfoWatcher._make_command = lambda self: None  # no command: submitit skips the poll
