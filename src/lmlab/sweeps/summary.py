"""Multirun bookkeeping: a failed run of a sweep leaves its error in its directory and in a final summary.

Hydra runs every job of a batch and only then raises the first failure, so no run is lost; this
Hydra callback makes the failures easy to find: `<job dir>/error.txt` per failed run, and one summary
of the whole sweep printed when the process ends (also when Hydra exits on the failure).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lmlab.runs.status import ERROR_FILE, run_status
from lmlab.utils.redact import mask, redact_overrides, remember, secrets_in, secrets_in_overrides

JOB_FAILURE = "lmlab_job_failure"  # set on a job's exception once its error.txt is written: no traceback at exit


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The numbered job directories of a sweep, in job order."""
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def sweep_summary(sweep_dir: Path) -> str:
    """How each run of a sweep ended: counts by outcome, then a line for each run that did not finish (a failed
    run with the first line of its error)."""
    from collections import Counter

    jobs = job_dirs(sweep_dir) if sweep_dir.is_dir() else []
    status = {job: run_status(job) for job in jobs}
    counts = Counter(s.split(" at step")[0] for s in status.values())
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if outcome != "finished")
    lines = [f"Sweep {sweep_dir}: {counts['finished']} of {len(jobs)} runs finished" + (f", {outcomes}" if outcomes
                                                                                          else "")]
    for job, outcome in status.items():
        if outcome == "failed":
            first_line = (job / ERROR_FILE).read_text().splitlines()[0]
            lines.append(f"  FAILED #{job.name}: {first_line}  (details: {job / ERROR_FILE})")
        elif outcome != "finished":
            lines.append(f"  #{job.name}: {outcome}")
    if any(sweep_dir.glob("*/wandb/offline-run-*")):
        lines.append(f"W&B runs were saved offline; upload them with: wandb sync {sweep_dir}/*/wandb/offline-run-*")
    lines.append(f"Compare the runs: lmlab-compare {sweep_dir}")
    return "\n".join(lines)


def print_sweep_summary(sweep_dir: Path) -> None:
    """The summary at exit, when the sweep ran a job (a sweep refused before its first job has nothing to compare)."""
    if sweep_dir.is_dir() and job_dirs(sweep_dir):
        print(sweep_summary(sweep_dir), file=sys.stderr)


class SweepReport(Callback):
    """Writes `error.txt` into each failed job's directory and prints the sweep summary at exit."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra's sweepers raise on a failed job before `on_multirun_end`; exit handlers run either way.
        sweep_dir = Path(config.hydra.sweep.dir)
        atexit.register(print_sweep_summary, sweep_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # A re-launched sweep (same sweep_name) retries its jobs: a stale error must not outlive a success.
        if _is_multirun(config):
            (Path(config.hydra.runtime.output_dir) / ERROR_FILE).unlink(missing_ok=True)
            mask_multirun_yaml(Path(config.hydra.sweep.dir), config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        mask_multirun_yaml(Path(config.hydra.sweep.dir), config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED or not _is_multirun(config):
            return
        error = job_return._return_value  # the exception; `return_value` would re-raise it
        job_dir = Path(config.hydra.runtime.output_dir)
        job_dir.mkdir(parents=True, exist_ok=True)
        overrides = " ".join(redact_overrides(job_return.overrides or []))
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        (job_dir / ERROR_FILE).write_text(mask(f"{type(error).__name__}: {error}\noverrides: {overrides}\n\n{details}"))
        with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__ keeps its traceback
            setattr(error, JOB_FAILURE, True)


@contextlib.contextmanager
def job_failures_in_the_summary(argv: list[str]) -> Iterator[None]:
    """A multirun whose job failed ends with lmlab's summary (at exit), not Hydra's traceback of that job ahead
    of it: the traceback is in the job's error.txt and train.log. Any other error is shown as Hydra shows it."""
    if not {"-m", "--multirun"} & set(argv):
        yield
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing: the job's error is judged here
    stderr, sys.stderr = sys.stderr, _WithoutHydraJobLine(sys.stderr)
    try:
        yield
    except Exception as error:  # noqa: BLE001 - a job's failure ends the sweep quietly; others are printed
        if not getattr(error, JOB_FAILURE, False):
            traceback.print_exc()
        sys.exit(1)
    finally:
        sys.stderr = stderr
        os.environ.pop("HYDRA_FULL_ERROR", None)


class _WithoutHydraJobLine:
    """stderr without Hydra's "Error executing job with overrides: [...]" (the summary names the failed jobs)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        if isinstance(text, str) and text.startswith("Error executing job with overrides:"):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def mask_multirun_yaml(sweep_dir: Path, config: DictConfig) -> None:
    """Mask the secrets of the sweep's config in the `multirun.yaml` Hydra saved (before its first job)."""
    from omegaconf import OmegaConf

    path = sweep_dir / "multirun.yaml"
    remember([*secrets_in(OmegaConf.to_container(config, resolve=False)),
              *secrets_in_overrides(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])])
    if path.is_file() and (masked := mask(text := path.read_text())) != text:
        path.write_text(masked)


def _is_multirun(config: DictConfig) -> bool:
    return config.hydra.mode == RunMode.MULTIRUN
