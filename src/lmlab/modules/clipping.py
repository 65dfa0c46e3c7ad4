"""Gradient clipping that also works for fused optimizers under mixed precision.

Lightning's `MixedPrecision.clip_gradients` refuses any optimizer that "handles unscaling" itself (fused
AdamW), because under fp16 its gradients are still multiplied by the GradScaler's scale when clipping
runs. That is only true with a scaler: under `bf16-mixed` there is none, the gradients are the true
ones, and clipping is plain clipping. Under `16-mixed` the gradients are unscaled first
(`GradScaler.unscale_`), after which `GradScaler.step` hands the fused kernel no scale to divide by
again (it records the optimizer as unscaled) and still skips the step on inf/NaN gradients.
"""

from __future__ import annotations

import lightning as L
from lightning.fabric.plugins.precision.amp import _optimizer_handles_unscaling
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch.optim import Optimizer


def clip_gradients(module: L.LightningModule, optimizer: Optimizer, clip_val: float | None,
                   algorithm: str | None) -> None:
    """`module.clip_gradients`, except for a fused optimizer under mixed precision (see module docstring)."""
    precision = module.trainer.precision_plugin
    if not (clip_val and isinstance(precision, MixedPrecision) and _optimizer_handles_unscaling(optimizer)):
        module.clip_gradients(optimizer, gradient_clip_val=clip_val, gradient_clip_algorithm=algorithm)
        return
    if precision.scaler is not None:
        # MixedPrecision.optimizer_step never unscales a fused optimizer's gradients, so they are still scaled.
        precision.scaler.unscale_(optimizer)
    # Precision's own clipping, without MixedPrecision's refusal (which only holds for scaled gradients).
    Precision.clip_gradients(precision, optimizer, clip_val, GradClipAlgorithmType(algorithm or "norm"))
