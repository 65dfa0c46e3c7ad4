"""Every tracker's history equal to `metrics.csv`: every point once, at its step, whatever the kills and relaunches.

`metrics.csv` is durable: each row is on disk when logged, and a resumed launch drops the rows after its
checkpoint before logging them again. A tracker's stream is not: a SIGKILL loses what it had not written
yet, and a relaunch logs the steps after the checkpoint a second time. So a relaunch reads what each tracker
holds of the run from the tracker's own store (W&B: the run's earlier offline `.wandb` files; MLflow: the
run's metric histories; TensorBoard: its purge marker makes readers drop the repeated steps), logs the
`metrics.csv` points it lacks, and skips the points it already holds (`lmlab.tracking.loggers.TrackerLedger`).
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmlab.tracking.wandb_records import history_rows

log = logging.getLogger(__name__)

STEP_KEY = "trainer/global_step"  # Lightning's W&B step metric (here: no Lightning import to read it)


def offline_files(run_dir: Path, run_id: str) -> list[Path]:
    """This run's offline W&B files, one per launch, oldest first."""
    return sorted((run_dir / "wandb").glob(f"offline-run-*/run-{run_id}.wandb"))


def wandb_row_points(row: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one W&B history row by name: W&B's own keys (`_step`, `_runtime`) and the step metric
    left out, a table or other media (written as `samples/_type`, `samples/path`, …) as one point `samples`."""
    media = {key[:-len("/_type")] for key in row if key.endswith("/_type")}
    points = {}
    for key, value in row.items():
        if key == STEP_KEY or key.startswith("_"):
            continue
        prefix = next((m for m in media if key.startswith(m + "/")), None)
        points[prefix or key] = row.get(prefix + "/path", value) if prefix else value
    return points


def wandb_history(run_dir: Path, run_id: str) -> dict[tuple[int, str], list]:
    """(step, metric) -> every value the run's offline W&B files hold there, in order (media included)."""
    points: dict[tuple[int, str], list] = defaultdict(list)
    for path in offline_files(run_dir, run_id):
        for row in history_rows(path):
            if STEP_KEY in row:
                for key, value in wandb_row_points(row).items():
                    points[int(row[STEP_KEY]), key].append(value)
    return dict(points)


def logged_points(run_dir: Path, run_id: str) -> set[tuple[int, str]]:
    """(step, metric) of every point the run's offline W&B files hold."""
    return set(wandb_history(run_dir, run_id))


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
