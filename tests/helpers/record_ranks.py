"""A callback writing, per process of a run, what SLURM and Lightning told it: `<run dir>/rank<N>.json`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L


class RecordRanks(L.Callback):
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = {"slurm_ntasks": os.environ.get("SLURM_NTASKS"), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                  "world_size": trainer.world_size, "global_rank": trainer.global_rank}
        (Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
