"""A Hydra callback writing one variable of the launching process's environment before, between and after
the jobs of a multirun: what a job leaves in `os.environ` shows up in the next line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


class RecordEnvironment(Callback):
    def __init__(self, key: str, path: str):
        self.key, self.path = key, Path(path)

    def _write(self, moment: str) -> None:
        with self.path.open("a") as f:
            f.write(f"{moment} {os.environ.get(self.key, '<unset>')}\n")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self._write("start")

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        self._write(f"after-job-{config.hydra.job.num}")

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        self._write("end")
