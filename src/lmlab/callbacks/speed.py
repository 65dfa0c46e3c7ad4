"""Tokens per second and model FLOPs utilisation, without a host sync per step."""

from __future__ import annotations

import time
from collections import deque

import lightning as L
import torch

from lmlab.models import flops_per_token

# Dense 16-bit tensor-core peaks (FLOP/s) of GPUs that Lightning's table misses under the name they report:
# "NVIDIA H200" (Lightning knows only "H200 SXM1"/"NVL1"), whose compute is the H100 SXM's.
HALF_PRECISION_PEAKS = {"h200": 989.4e12}


def device_peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The GPU's peak FLOP/s for `dtype`: Lightning's table, then `HALF_PRECISION_PEAKS`; None if unknown."""
    from lightning.fabric.utilities.throughput import get_available_flops

    peak = get_available_flops(device, dtype)
    if peak is None and dtype in (torch.bfloat16, torch.float16):
        name = torch.cuda.get_device_name(device).lower()
        peak = next((flops for key, flops in HALF_PRECISION_PEAKS.items() if key in name), None)
    return peak


class SpeedMonitor(L.Callback):
    """Logs `train/tokens_per_sec` over a sliding window of steps (all ranks) and `train/mfu`.

    MFU needs the hardware's peak FLOP/s: taken from Lightning's table for known GPUs, or from
    `peak_flops` (e.g. for a CPU); without either it is not logged.
    """

    def __init__(self, window: int = 20, peak_flops: float | None = None):
        self.window = window
        self.peak_flops = peak_flops
        self._times: deque[float] = deque(maxlen=window + 1)
        self._tokens: deque[int] = deque(maxlen=window + 1)
        self._flops_per_token: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._times.clear()
        self._tokens.clear()
        if self.peak_flops is None and trainer.strategy.root_device.type == "cuda":
            precision = str(trainer.precision)
            dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if "16" in precision else torch.float32
            self.peak_flops = device_peak_flops(trainer.strategy.root_device, dtype)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if not self._times:  # a launch's first step is timed too: every logged step has its figure, resumed or not
            self._times.append(time.perf_counter())
            self._tokens.append(0)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        input_ids = batch["input_ids"]
        if self._flops_per_token is None:
            self._flops_per_token = flops_per_token(pl_module.model, input_ids.shape[-1])
        self._times.append(time.perf_counter())
        self._tokens.append(input_ids.numel() * trainer.world_size)
        # Only on the steps Lightning writes to the loggers: logging a float makes a tensor on the device.
        if len(self._times) < 2 or trainer.global_step % max(trainer.log_every_n_steps, 1):
            return
        seconds = self._times[-1] - self._times[0]
        tokens_per_sec = sum(list(self._tokens)[1:]) / seconds
        metrics = {"train/tokens_per_sec": tokens_per_sec}
        if self.peak_flops:
            metrics["train/mfu"] = tokens_per_sec * self._flops_per_token / (self.peak_flops * trainer.world_size)
        pl_module.log_dict(metrics, on_step=True, on_epoch=False)
