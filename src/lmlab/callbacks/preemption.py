"""Preemption: SIGTERM or SIGUSR1 → checkpoint at the next step boundary → clean exit (→ SLURM requeue)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
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
    """

    def __init__(self, dirpath: str, filename: str = "last"):
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self._requeue = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registered its handlers before this hook and restores the originals at teardown.
        if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._on_sigusr1)

    def _on_sigusr1(self, signum: int, frame: object) -> None:
        self._requeue = True
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's SIGTERM path: flag, forward to DDP children, stop

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
