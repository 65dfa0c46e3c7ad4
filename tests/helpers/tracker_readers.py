"""What each tracker holds of a run, read with the tracker's own reader: (step, metric) -> every value logged.

W&B offline: its `.wandb` files (wandb 0.31 has no public reader; the framing is parsed with W&B's own protobuf);
TensorBoard: `EventAccumulator`, which applies TensorBoard's purge markers as its UI does; MLflow: `MlflowClient`
on the run's store. The same readers serve `lmlab-compare --source` (`lmlab.tracking.stores`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lmlab.tracking.history import csv_points, wandb_history
from lmlab.tracking.stores import Points
from lmlab.tracking.stores import mlflow_points as mlflow_held  # noqa: F401
from lmlab.tracking.stores import tensorboard_points as tensorboard_held  # noqa: F401


def csv_held(run_dir: Path) -> Points:
    held: Points = defaultdict(list)
    for step, values in csv_points(run_dir):
        for key, value in values.items():
            held[step, key].append(value)
    return dict(held)


def wandb_held(run_dir: Path) -> Points:
    """Every point of the run's W&B files, media (a table of samples) included."""
    return wandb_history(run_dir, (run_dir / "wandb_id.txt").read_text().strip())
