"""`StepClock` as a Lightning callback: what `bench/train_throughput.py` adds to lmlab's default callbacks."""

from __future__ import annotations

import lightning as L
from harness import StepClock


class LightningStepClock(L.Callback):
    def __init__(self, output_file: str, warmup: int, steps: int, tokens_per_step: int):
        self.clock = StepClock(output_file, warmup, steps, tokens_per_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.clock.record_first_batch(batch["input_ids"], outputs["loss"])
        self.clock.tick()
