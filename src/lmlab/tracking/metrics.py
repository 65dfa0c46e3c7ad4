"""`metrics.csv` that survives any kill: every row on disk as soon as it is logged, and on resume the
rows past the checkpoint dropped, so the curve holds each step once.

Lightning's `CSVLogger` buffers rows (100 steps by default; a SIGKILL loses them) and deletes an existing
`metrics.csv` when it starts; `DurableCSVLogger` appends each row at once and continues the file.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from lmlab.compat.lightning import convert_params
from lmlab.tracking.loggers import StepsDone
from lmlab.utils.redact import redact

METRICS_FILE = "metrics.csv"


def _signature(row: dict[str, Any]) -> tuple:
    """What makes a row the same row: its step and the metrics it holds (not their values)."""
    return str(row.get("step")), frozenset(k for k, v in row.items() if k != "step" and v not in (None, ""))


class _AppendingWriter(ExperimentWriter):
    """Continues an existing metrics.csv (its header included) instead of deleting it; a row already in
    the file (same step, same metrics: e.g. a validation repeated after resuming) is not written twice."""

    def _check_log_dir_exists(self) -> None:
        self.seen: set[tuple] = set()
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                reader = csv.DictReader(f)
                self.metrics_keys = sorted(reader.fieldnames or [])
                self.seen = {_signature(row) for row in reader}

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics_dict, step)
        signature = _signature({k: str(v) for k, v in self.metrics[-1].items()})
        if signature in self.seen:
            self.metrics.pop()
        self.seen.add(signature)


class DurableCSVLogger(StepsDone, CSVLogger):
    """`CSVLogger` that writes each row to disk when it is logged (a closed file survives SIGKILL)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _AppendingWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def log_hyperparams(self, params: Any = None) -> None:
        super().log_hyperparams(redact(convert_params(params)))  # hparams.yaml, secrets masked

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        self.experiment.save()


def drop_rows_after(run_dir: Path, step: int) -> int:
    """Drop the rows of `<run_dir>/metrics.csv` logged after `step` (a run resumed from the checkpoint of
    `step` logs them again); returns how many were dropped. Written to a temp file and renamed, so a kill
    never loses the file."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [row for row in rows if not row.get("step") or int(float(row["step"])) <= step]
    if len(kept) == len(rows):
        return 0
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)
    return len(rows) - len(kept)


def log_step_row_now(trainer) -> None:
    """Send this training step's metrics to the loggers now, not after the callbacks' `on_train_batch_end`.

    Lightning logs a step's row after every callback's `on_train_batch_end`, where the checkpoint of that step is
    written: a kill between the two lost the row (the resumed run starts after that step). Lightning's own call
    for the step is then skipped, so each logger gets the row once. Checkpoint callbacks run last
    (Lightning orders them so), so the row holds what the other callbacks logged.
    """
    connector = trainer._logger_connector
    connector.update_train_step_metrics()

    def skip_once() -> None:
        del connector.update_train_step_metrics  # back to the class's method for the next step

    connector.update_train_step_metrics = skip_once


def drop_samples_after(run_dir: Path, step: int) -> None:
    """Drop the lines of `<run_dir>/samples.txt` generated after `step`, which a run resumed from `step` generates
    again (W&B's tables of samples are re-logged from this file after a kill); written whole, then renamed."""
    from lmlab.tracking.loggers import SAMPLES_FILE

    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not (line.startswith("step ") and line[5:].split(":", 1)[0].isdigit()
                                            and int(line[5:].split(":", 1)[0]) > step)]
    if len(kept) != len(lines):
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
