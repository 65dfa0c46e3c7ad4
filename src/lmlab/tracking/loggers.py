"""Lightning loggers adapted to lmlab: one step convention, each point once in every tracker.

Every tracker gets the points `metrics.csv` gets, at the same step. A relaunch resumes from the checkpoint of
step `c` and logs the steps after `c` a second time (and may repeat the validation of `c`); a SIGKILL may have
cost a tracker the points it had not written yet. So on resume each tracker is told `continue_run(c, points)`
with the `metrics.csv` points up to `c`: it logs those it lacks, and from then on skips any point it already
holds (`TrackerLedger`). docs/tracking.md says what each tracker does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lmlab.tracking.history import STEP_KEY  # Lightning's W&B step metric

SAMPLES_KEY = "samples"  # W&B's table of generated samples (lmlab.callbacks.SampleContinuations)
SAMPLES_FILE = "samples.txt"  # the same samples, durable: `step N: 'text'` lines in the run directory

log = logging.getLogger(__name__)

Points = Sequence[tuple[int, Mapping[str, float]]]  # (step, {metric: value}) in the order logged


def steps_done(step: int) -> int:
    """lmlab's step of a point Lightning logs at `step` (see `StepsDone`)."""
    return step + 1


class StepsDone:
    """Logs each point at the number of optimizer steps done, as the console, the checkpoint names
    (`step000005.ckpt`), `summary.json` and `lmlab-compare` count them.

    Lightning passes the index of the step just taken (4 after 5 steps, also for the validation that
    follows it); this is the one place lmlab turns that into steps done. A learning rate logged before a
    step is then at the step that uses it.
    """

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, None if step is None else steps_done(step))


class TrackerLedger:
    """Which points a tracker holds of this run, so that a relaunch logs each one once.

    `held`: the (step, metric) points the run's earlier launches wrote, read back from the tracker's own store,
    and those `continue_run` logged from `metrics.csv`; `held_until`: every point up to this step is held
    (where the store says only that: W&B online).
    """

    def __init__(self, held: set[tuple[int, str]] | None = None, held_until: int = -1):
        self.held, self.held_until = set(held or ()), held_until

    def new(self, step: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The points of `metrics` at `step` the tracker does not hold."""
        return {key: value for key, value in metrics.items()
                if step > self.held_until and (step, key) not in self.held}


class ContinuedTracker:
    """A tracker that a relaunch continues: `continue_run` is called on rank zero before training resumes."""

    ledger: TrackerLedger

    def continue_run(self, step: int, points: Points) -> int:
        """Given `metrics.csv`'s points up to `step` (the resumed checkpoint's), log those the tracker lacks,
        and skip from now on every point it holds; returns how many points were logged."""
        raise NotImplementedError


class StepsDoneTensorBoardLogger(ContinuedTracker, TensorBoardLogger):
    """Lightning's `TensorBoardLogger` on lmlab's step axis; each call's events on disk when logged (a SIGKILL
    loses none), and a resumed launch's event file starts with TensorBoard's own purge marker (a
    `SessionLog.START` at the resumed step): readers drop the earlier files' events from that step on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = TrackerLedger()

    def continue_run(self, step: int, points: Points) -> int:
        self._kwargs["purge_step"] = step  # before the writer is made: `SummaryWriter(purge_step=...)`
        self.ledger = TrackerLedger(held_until=step - 1)  # the earlier files' events before `step` are kept
        at_step = {key: value for s, metrics in points if s == step for key, value in metrics.items()}
        self._write(step, at_step)
        self.ledger.held.update((step, key) for key in at_step)
        return len(at_step)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is None:
            super().log_metrics(dict(metrics), step)
        else:
            self._write(steps_done(step), self.ledger.new(steps_done(step), metrics))

    def _write(self, step: int, metrics: Mapping[str, float]) -> None:
        if metrics:
            super().log_metrics(dict(metrics), step)
            self.experiment.flush()


class StepsDoneWandbLogger(ContinuedTracker, WandbLogger):
    """Lightning's `WandbLogger` on lmlab's step axis, each point once, with the run's config as its only
    config record.

    W&B's own step (`_step`) is left to W&B: every metric is plotted against `trainer/global_step`
    (Lightning's `define_metric("*", step_metric=...)`), so a point logged at an earlier step than the last
    one (a validation after the next step's learning rate, a relaunch's missing points) is kept, not
    dropped. The points of one step go to W&B as one row, when the next step begins or the run ends.

    `held`: the (step, metric) points the run's earlier launches wrote (offline: read from their `.wandb`
    files, `lmlab.tracking.history`); online, the resumed run's summary says up to which step the server
    holds the run. `lmlab.tracking.wandb_logger.log_config` records lmlab's resolved config, and the module's
    hyperparameters that are not config keys under `module`; Lightning would add the module's hyperparameters
    a second time, with the config's nodes rewritten.
    """

    def __init__(self, *args: Any, held: set[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Lightning always passes `anonymous`, which wandb 0.31 answers with a deprecation warning per run
        self._wandb_init.pop("anonymous", None)
        self.ledger = TrackerLedger(held)
        self.online = held is None
        self._row: dict[str, Any] = {}
        self._row_step: int | None = None

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """A point without a step (a table of samples, `log_text`) belongs to the step being logged."""
        self.log_points(self._row_step if step is None else steps_done(step), metrics)

    def log_points(self, step: int | None, metrics: Mapping[str, Any]) -> int:
        """Add the points of `metrics` that W&B does not hold yet to the row of `step`; returns how many."""
        if step is None:
            self.experiment.log(dict(metrics))
            return len(metrics)
        new = self.ledger.new(step, metrics)
        if new:
            if step != self._row_step:
                self.flush()
            self._row_step = step
            self._row.update(new)
        return len(new)

    def flush(self) -> None:
        """Send the pending step's row to W&B: one `log` call, committed once."""
        if self._row and self._row_step is not None:
            self.experiment.log({**self._row, STEP_KEY: self._row_step})
        self._row = {}

    def continue_run(self, step: int, points: Points) -> int:
        """Also the tables of samples a kill cost W&B, from `samples.txt` (written when they were generated)."""
        if self.online:  # the server's copy is not read back: it holds the run up to its summary's last step
            self.ledger.held_until = int(self.experiment.summary.get(STEP_KEY, -1))
        rows: dict[int, dict[str, Any]] = {}
        for s, metrics in points:
            rows.setdefault(s, {}).update(metrics)
        for s, texts in read_samples(Path(self.save_dir) / SAMPLES_FILE).items():
            if s <= step and (s, SAMPLES_KEY) not in self.ledger.held and s > self.ledger.held_until:
                rows.setdefault(s, {})[SAMPLES_KEY] = samples_table(s, texts)
        logged = 0
        for s in sorted(rows):
            new = self.ledger.new(s, rows[s])
            logged += self.log_points(s, new)
            self.ledger.held.update((s, key) for key in new)
        self.flush()
        return logged

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.flush()
        super().finalize(status)

    def log_hyperparams(self, params: Any) -> None:
        pass


def samples_table(step: int, texts: Sequence[str]):
    import wandb

    return wandb.Table(columns=["step", "text"], data=[[step, text] for text in texts])


def read_samples(path: Path) -> dict[int, list[str]]:
    """{step: texts} of a `samples.txt` (a resumed launch drops its lines after the resumed step first:
    `lmlab.tracking.metrics.drop_samples_after`)."""
    import ast

    samples: dict[int, list[str]] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        head, sep, text = line.partition(": ")
        if sep and head.startswith("step ") and head[5:].isdigit():
            try:
                samples.setdefault(int(head[5:]), []).append(ast.literal_eval(text))
            except (ValueError, SyntaxError):  # a line cut short by a kill
                continue
    return samples


def continue_trackers(loggers: Sequence[Any], step: int, points: Points) -> dict[str, int]:
    """On a resumed launch (rank zero): each tracker logs the `metrics.csv` points up to `step` that it lacks;
    returns how many, by tracker."""
    return {type(logger).__name__: logger.continue_run(step, [(s, m) for s, m in points if s <= step])
            for logger in loggers if isinstance(logger, ContinuedTracker)}


def continue_history(loggers: Sequence[Any], run_dir: Path, step: int) -> None:
    """On a resumed launch (rank zero): each tracker logs the `metrics.csv` points up to `step` it lacks."""
    from lmlab.tracking.history import csv_points

    for tracker, logged in continue_trackers(loggers, step, list(csv_points(run_dir))).items():
        if logged:
            log.info("%s: logged %d points of metrics.csv that the run's earlier launches had not written",
                     tracker, logged)
