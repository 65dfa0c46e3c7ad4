"""Launching `lmlab-train` in the background, waiting for a checkpoint, killing it, comparing runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from conftest import TINY, run_cli

# Epochs of 5 steps, so kill points fall mid-epoch and on epoch boundaries; a checkpoint every step.
SHORT = [
    *TINY,
    "trainer.max_steps=24",
    "trainer.limit_train_batches=5",
    "trainer.val_check_interval=4",
    "callbacks.last_checkpoint.every_n_train_steps=1",
    "callbacks.samples=null",
    "callbacks.export_hf=null",
]


@contextmanager
def launch(args: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """Run `lmlab-train <args>` in its own process group (DDP children die with it), output to `log`;
    the group is killed on leaving, so a failing test leaves no training behind."""
    with open(log, "a") as out:
        process = subprocess.Popen([sys.executable, "-m", "lmlab.train", *args], cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            kill_group(process)


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen, timeout: float = 300) -> int:
    """Wait for a step checkpoint at `step` or later (they appear atomically, by rename); returns its step.

    Fails if the run ends first. Older step checkpoints are rotated away, so any step >= `step` counts.
    """
    deadline = time.monotonic() + timeout
    while True:
        steps = [int(p.stem[4:]) for p in (run_dir / "checkpoints").glob("step*.ckpt")]
        if steps and max(steps) >= step:
            return max(steps)
        assert process.poll() is None, f"the run ended (status {process.returncode}) before step {step}"
        assert time.monotonic() < deadline, f"no checkpoint of step {step} after {timeout}s"
        time.sleep(0.02)


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    os.killpg(process.pid, sig)
    process.wait(timeout=120)


def final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def assert_same_params(a: Path, b: Path) -> None:
    pa, pb = final_params(a), final_params(b)
    assert pa.keys() == pb.keys()
    different = [k for k in pa if not torch.equal(pa[k], pb[k])]
    assert not different, f"parameters differ from the uninterrupted run: {different[:5]}"


def completed_run(tmp: Path, args: list[str], cache_dir: Path) -> Path:
    """`lmlab-train <args>` run to the end in `tmp/run` (asserting it succeeded); returns that directory."""
    result = run_cli([*args, f"run_dir={tmp / 'run'}", f"paths.cache_dir={cache_dir}"], cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run"


# Elastic resume and mixtures: a run checkpointed on N processes continues on M at the same global sample.
# Global batch 8 on 1 process (8 x 1) or 2 (4 x 1 each), dropout off: the runs differ only by summation order.
ELASTIC = [*(a for a in SHORT if not a.startswith("trainer.limit_train_batches")), "data.max_documents=3",
           "global_batch_size=8", "trainer.accelerator=cpu", "trainer.max_steps=12", "trainer.log_every_n_steps=1"]
# debug=fast's limit_val_batches=2 counts batches of the whole validation: the same blocks on 1 process or 2
ONE, TWO = ["trainer.devices=1"], ["trainer=ddp", "trainer.devices=2"]


def record(run_dir: Path) -> list[str]:
    return ["+callbacks.record._target_=record_batches.RecordBatches", f"+callbacks.record.dirpath={run_dir}/batches"]
