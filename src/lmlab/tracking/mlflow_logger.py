"""MLflow: Lightning's `MLFlowLogger` on lmlab's step axis, one MLflow run per lmlab run, continued by a relaunch.

The store is any MLflow tracking URI; by default a SQLite file beside the run directories
(`sqlite:///outputs/mlflow.db`, artifacts under `outputs/mlartifacts`), which `mlflow ui --backend-store-uri`
reads. An experiment per sweep (`<experiment>-<sweep_name>`, as W&B groups), a run per job. The run's id
is kept in `<run dir>/mlflow_id.txt`, so that relaunching the same command continues the same MLflow run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from lmlab.tracking.loggers import ContinuedTracker, Points, StepsDone, TrackerLedger, steps_done

log = logging.getLogger(__name__)

ID_FILE = "mlflow_id.txt"
PARAM_VALUE_CHARS = 6000  # MLflow's limit on a parameter's value


class StepsDoneMLFlowLogger(ContinuedTracker, StepsDone, MLFlowLogger):
    """`MLFlowLogger` whose points are at lmlab's steps, each once (MLflow keeps every value logged at a step:
    a relaunch skips the points the run's metric histories already hold), whose config record is lmlab's
    resolved config (`log_config`), and that logs the `hf/` export as an artifact when asked."""

    def __init__(self, *args: Any, id_file: str, resume: bool, log_hf_export: bool = False,
                 hf_dir: str | None = None, **kwargs: Any) -> None:
        self.id_file = Path(id_file)
        run_id = self.id_file.read_text().strip() if resume and self.id_file.is_file() else None
        super().__init__(*args, run_id=run_id, **kwargs)
        self.ledger = TrackerLedger()
        if run_id is not None and rank_zero_only.rank == 0:
            if self._run_exists(run_id):
                self.ledger = TrackerLedger(self._held_points(run_id))
            else:
                log.warning("MLflow run %s (%s) is not in %s: this launch starts a new MLflow run", run_id,
                            self.id_file, self._tracking_uri)
                self._run_id = None
        self._id_written = False
        self.log_hf_export, self.hf_dir = log_hf_export, Path(hf_dir) if hf_dir else None

    def _run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self._mlflow_client.get_run(run_id)
        except MlflowException:
            return False
        return True

    @property
    @rank_zero_experiment
    def experiment(self):
        client = super().experiment
        if not self._id_written:  # the run's id beside its files, for the next launch
            self.id_file.parent.mkdir(parents=True, exist_ok=True)
            self.id_file.write_text(f"{self._run_id}\n")
            self._id_written = True
        return client

    def _held_points(self, run_id: str) -> set[tuple[int, str]]:
        """(step, metric) of every point the MLflow run holds."""
        from lmlab.tracking.stores import mlflow_history

        return set(mlflow_history(self._mlflow_client, run_id))

    def continue_run(self, step: int, points: Points) -> int:
        self.experiment.update_run(self.run_id, status="RUNNING")  # a finished run continued by resume=force
        logged = 0
        for s, values in points:
            if new := self.ledger.new(s, values):
                MLFlowLogger.log_metrics(self, new, s)
                self.ledger.held.update((s, key) for key in new)
                logged += len(new)
        return logged

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None:
            metrics = self.ledger.new(steps_done(step), metrics)
        if metrics:
            super().log_metrics(dict(metrics), step)

    def log_hyperparams(self, params: Any) -> None:
        pass  # `log_config` records lmlab's resolved config

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The resolved config as MLflow parameters (`optimizer.lr`, …); a relaunch adds only new keys (MLflow
        refuses to change a parameter): a changed value (a larger `trainer.max_steps`) becomes a
        `resumed.<key>` tag."""
        from mlflow.entities import Param, RunTag

        client = self.experiment
        held = client.get_run(self.run_id).data.params
        flat = {key: str(value)[:PARAM_VALUE_CHARS] for key, value in flatten(config).items()}
        params = [Param(key, value) for key, value in flat.items() if key not in held]
        tags = [RunTag(f"resumed.{key}", value) for key, value in flat.items() if key in held and held[key] != value]
        for i in range(0, max(len(params), len(tags)), 100):
            client.log_batch(self.run_id, params=params[i:i + 100], tags=tags[i:i + 100])

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if status == "success" and self.log_hf_export and self.hf_dir is not None and self.hf_dir.is_dir():
            self.experiment.log_artifacts(self.run_id, str(self.hf_dir), self.hf_dir.name)
            log.info("MLflow: logged %s as the artifact %s/ of run %s", self.hf_dir, self.hf_dir.name, self.run_id)
        super().finalize(status)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"optimizer": {"lr": 3e-4}}` → `{"optimizer.lr": 3e-4}`; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def create_sqlite_store(tracking_uri: str) -> None:
    """Create the SQLite store's file and tables once: the jobs of a sweep that start together would otherwise
    race in MLflow's schema migration, and all but one fail."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    path = Path(tracking_uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        MlflowClient(tracking_uri).search_experiments(max_results=1)


def mlflow_logger(tracking_uri: str, experiment_name: str, run_dir: str, resume: bool | str = True,
                  artifact_location: str | None = None, tags: Mapping[str, str] | None = None,
                  run_name: str | None = None, log_hf_export: bool = False,
                  hf_dir: str | None = None) -> StepsDoneMLFlowLogger:
    """The run's MLflow logger; relaunched (`resume`), it continues the MLflow run whose id the run directory keeps."""
    from lmlab.utils.redact import mask, redact

    resume = resume not in (False, "never")
    if tracking_uri.startswith("sqlite:///"):
        create_sqlite_store(tracking_uri)
    return StepsDoneMLFlowLogger(
        experiment_name=experiment_name, run_name=mask(run_name) if run_name else None, tracking_uri=tracking_uri,
        tags=redact(dict(tags or {})), artifact_location=artifact_location, synchronous=True,
        id_file=str(Path(run_dir) / ID_FILE), resume=resume, log_hf_export=log_hf_export, hf_dir=hf_dir)
