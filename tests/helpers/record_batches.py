"""A callback that records which training samples each step saw, per rank: data order checked across launches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L


class RecordBatches(L.Callback):
    """Appends `{"step", "rows"}` (a hash per sample of the micro-batch) to `<dirpath>/batches-<rank>.jsonl`."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        rows = [hashlib.sha1(row.numpy().tobytes()).hexdigest()[:12] for row in batch["input_ids"].cpu()]
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(self.dirpath / f"batches-{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps({"step": trainer.global_step, "rows": rows}) + "\n")


def samples_by_step(dirpath: Path, after: int = -1) -> dict[int, list[str]]:
    """Every rank's samples of each step later than `after`, merged and sorted."""
    steps: dict[int, list[str]] = {}
    for path in dirpath.glob("batches-*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["step"] > after:
                steps.setdefault(entry["step"], []).extend(entry["rows"])
    return {step: sorted(rows) for step, rows in steps.items()}
