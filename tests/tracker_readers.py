"""What each tracker holds of a run, read with the tracker's own reader: (step, metric) -> every value logged.

W&B offline: its `.wandb` files (no public reader in wandb 0.31; `lmlab.runs.wandb_records` parses the framing
with W&B's own protobuf); TensorBoard: `EventAccumulator`, which applies TensorBoard's purge markers as the
UI does; MLflow: `MlflowClient` on the run's store.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lmlab.runs.tracker_history import STEP_KEY, csv_points, offline_files, wandb_row_points
from lmlab.runs.wandb_records import history_rows

Held = dict[tuple[int, str], list]


def csv_held(run_dir: Path) -> Held:
    held: Held = defaultdict(list)
    for step, values in csv_points(run_dir):
        for key, value in values.items():
            held[step, key].append(value)
    return dict(held)


def wandb_held(run_dir: Path) -> Held:
    run_id = (run_dir / "wandb_id.txt").read_text().strip()
    held: Held = defaultdict(list)
    for path in offline_files(run_dir, run_id):
        for row in history_rows(path):
            for key, value in wandb_row_points(row).items():
                held[int(row[STEP_KEY]), key].append(value)
    return dict(held)


def tensorboard_held(run_dir: Path) -> Held:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    held: Held = defaultdict(list)
    for tag in accumulator.Tags()["scalars"]:
        for event in accumulator.Scalars(tag):
            held[event.step, tag].append(event.value)
    return dict(held)


def mlflow_held(run_dir: Path, tracking_uri: str) -> Held:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run_id = (run_dir / "mlflow_id.txt").read_text().strip()
    held: Held = defaultdict(list)
    for key in client.get_run(run_id).data.metrics:
        for metric in client.get_metric_history(run_id, key):
            held[metric.step, key].append(metric.value)
    return dict(held)
