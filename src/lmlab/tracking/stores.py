"""What a tracker holds of a run, read from the tracker's own store, as `metrics.csv`-like rows.

`lmlab-compare source=wandb|mlflow|tensorboard` shows these instead of `metrics.csv`, so a user can check what
a tracker holds without its server: W&B's offline `.wandb` files (parsed with W&B's own protobuf), the MLflow
run through `MlflowClient` on its store, TensorBoard's event files through its `EventAccumulator`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.tracking.history import wandb_history

Points = dict[tuple[int, str], list]  # (step, metric) -> every value logged there, in order


def wandb_points(run_dir: Path) -> Points:
    id_file = run_dir / "wandb_id.txt"
    if not id_file.is_file():
        raise LmlabError(f"{run_dir} has no W&B run ({id_file} is missing: it was not run with logger=wandb)")
    history = wandb_history(run_dir, id_file.read_text().strip())
    return {point: values for point, values in history.items() if all(isinstance(v, int | float) for v in values)}


def mlflow_points(run_dir: Path, tracking_uri: str) -> Points:
    from mlflow.tracking import MlflowClient

    id_file = run_dir / "mlflow_id.txt"
    if not id_file.is_file():
        raise LmlabError(f"{run_dir} has no MLflow run ({id_file} is missing: it was not run with logger=mlflow)")
    return mlflow_history(MlflowClient(tracking_uri), id_file.read_text().strip())


def mlflow_history(client, run_id: str) -> Points:
    """(step, metric) -> every value the MLflow run holds there, from its metric histories."""
    points: Points = defaultdict(list)
    for key in client.get_run(run_id).data.metrics:
        for metric in client.get_metric_history(run_id, key):
            points[metric.step, key].append(metric.value)
    return dict(points)


def tensorboard_points(run_dir: Path) -> Points:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as e:
        raise LmlabError("source=tensorboard reads the event files with TensorBoard's own reader: "
                         "pip install tensorboard") from e
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    points: Points = defaultdict(list)
    for tag in accumulator.Tags()["scalars"]:
        for event in accumulator.Scalars(tag):
            points[event.step, tag].append(event.value)
    return dict(points)


def as_rows(points: Points) -> list[dict[str, str]]:
    """One `metrics.csv`-like row per step (the last value logged at it), in step order."""
    rows: dict[int, dict[str, str]] = {}
    for (step, key), values in sorted(points.items()):
        rows.setdefault(step, {"step": str(step)})[key] = repr(values[-1])
    return list(rows.values())
