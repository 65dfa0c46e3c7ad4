"""W&B history equal to `metrics.csv`: every point once, at its step, whatever the kills and relaunches.

`metrics.csv` is durable: each row is on disk when logged, and a resumed launch drops the rows after its
checkpoint before logging them again. The W&B stream is not: a SIGKILL loses what wandb had not written
yet, and a relaunch logs the steps after the checkpoint a second time. For an offline run (whose files
are in `<run dir>/wandb/`), a relaunch therefore reads which (step, metric) points the run's earlier
`.wandb` files hold, logs from `metrics.csv` the points they lack, and skips the points they already
hold. Every point goes to W&B at W&B's own step equal to lmlab's, so `wandb sync` of the run's folders
yields one run with one point per step. (Online, the server's copy cannot be read back here.)
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lmlab.runs.loggers import STEP_KEY, StepsDoneWandbLogger
from lmlab.runs.wandb_records import history_rows

log = logging.getLogger(__name__)


def offline_files(run_dir: Path, run_id: str) -> list[Path]:
    """This run's offline W&B files, one per launch, oldest first."""
    return sorted((run_dir / "wandb").glob(f"offline-run-*/run-{run_id}.wandb"))


def logged_points(run_dir: Path, run_id: str) -> set[tuple[int, str]]:
    """(step, metric) of every point the run's offline W&B files hold."""
    points = set()
    for path in offline_files(run_dir, run_id):
        for row in history_rows(path):
            if STEP_KEY in row:
                points.update((int(row[STEP_KEY]), key) for key in row if key != STEP_KEY and not key.startswith("_"))
    return points


def csv_points(run_dir: Path) -> Iterator[tuple[int, dict[str, float]]]:
    """(step, {metric: value}) of each row of `metrics.csv`, in the order logged."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = {k: _number(v) for k, v in row.items() if k != "step" and v not in (None, "")}
            if row.get("step") and values:
                yield int(float(row["step"])), values


def _number(text: str) -> float | int:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def relog_missing(loggers: Sequence[Any], run_dir: Path) -> None:
    """On a resumed launch (rank zero): log to each offline W&B run the `metrics.csv` points it lacks."""
    for logger in loggers:
        if isinstance(logger, StepsDoneWandbLogger) and (missing := logger.log_missing(list(csv_points(run_dir)))):
            log.info("W&B: logged %d points of metrics.csv that the run's earlier launches had not written", missing)
