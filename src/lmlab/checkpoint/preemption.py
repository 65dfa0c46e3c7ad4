"""Preemption: SIGTERM or SIGUSR1 → checkpoint at the next step boundary → clean exit (→ SLURM requeue)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class PreemptionCheckpoint(L.Callback):
    """Saves `<dirpath>/<filename>.ckpt` when Lightning stops training on a signal.

    Lightning already turns SIGTERM into a stop at the next step boundary (it raises `SIGTERMException`
    after the step, on every DDP rank); this adds the checkpoint, and treats SIGUSR1 — what SLURM sends
    before a time limit with `--signal=USR1@90` — the same way. Lightning's own SLURM SIGUSR1 handler
    saves from inside the signal handler (in the middle of a step); ours replaces it, saves at the step
    boundary, and requeues the job with `scontrol requeue` (rank 0, only after SIGUSR1: SIGTERM may be
    a `scancel`).

    SIGUSR2 is what submitit (`hydra/launcher=slurm`) asks SLURM to send before a job's time limit; its
    handler requeues the job and exits at once, mid-step. Ours first stops at the step boundary and saves,
    then hands over to submitit's handler, so the requeued job resumes with no step lost.
    """

    def __init__(self, dirpath: str, filename: str = "last"):
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self._requeue = False
        self._hand_over: tuple[Callable, int] | None = None  # submitit's handler, after our checkpoint

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registered its handlers before this hook and restores the originals at teardown.
        if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGUSR1, self._on_requeue_signal)
        previous = signal.getsignal(signal.SIGUSR2)
        if callable(previous):  # submitit's time-limit handler
            signal.signal(signal.SIGUSR2, lambda signum, frame: self._on_submitit_signal(previous, signum))

    def _on_requeue_signal(self, signum: int, frame: object) -> None:
        self._requeue = True
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's SIGTERM path: flag, forward to DDP children, stop

    def _on_submitit_signal(self, handler: Callable, signum: int) -> None:
        self._hand_over = (handler, signum)
        os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        trainer.save_checkpoint(self.path)
        log.info("Stopped by a signal at step %d; saved %s", trainer.global_step, self.path)
        job_id = os.environ.get("SLURM_JOB_ID")
        if self._requeue and job_id and trainer.is_global_zero:
            job_id = os.environ.get("SLURM_ARRAY_JOB_ID", job_id)
            if task := os.environ.get("SLURM_ARRAY_TASK_ID"):
                job_id = f"{job_id}_{task}"
            result = subprocess.run(["scontrol", "requeue", job_id], check=False)
            log.info("scontrol requeue %s: exit status %d", job_id, result.returncode)
        if self._hand_over is not None:
            handler, signum = self._hand_over
            log.info("Handing the time-limit signal to submitit, which requeues the job")
            for logger in trainer.loggers:  # submitit exits at once: write out what the loggers hold
                logger.save()
            handler(signum, None)  # requeues (rank 0) and exits
