"""Gradient clipping that also works for fused optimizers under mixed precision, and under FSDP.

Lightning's `MixedPrecision.clip_gradients` refuses any optimizer that "handles unscaling" itself (fused
AdamW), because under fp16 its gradients are still multiplied by the GradScaler's scale when clipping
runs. That is only true with a scaler: under `bf16-mixed` there is none, the gradients are the true
ones, and clipping is plain clipping. Under `16-mixed` the gradients are unscaled first
(`GradScaler.unscale_`), after which `GradScaler.step` hands the fused kernel no scale to divide by
again (it records the optimizer as unscaled) and still skips the step on inf/NaN gradients.

Under FSDP, Lightning's `FSDPPrecision` refuses norm clipping outright (`clip_grad_norm_` over a rank's
shards would be wrong); the root FSDP module's own `clip_grad_norm_` computes the global norm, and is used.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.plugins.precision import FSDPPrecision, MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch.optim import Optimizer

from lmlab.compat.lightning import optimizer_handles_unscaling


def clip_gradients(module: L.LightningModule, optimizer: Optimizer, clip_val: float | None,
                   algorithm: str | None) -> None:
    """`module.clip_gradients`, except for a fused optimizer under mixed precision or norm clipping under FSDP."""
    precision = module.trainer.precision_plugin
    algorithm = GradClipAlgorithmType(algorithm or "norm")
    fsdp = isinstance(precision, FSDPPrecision) and algorithm == GradClipAlgorithmType.NORM
    fused_amp = isinstance(precision, MixedPrecision) and optimizer_handles_unscaling(optimizer)
    if not clip_val or not (fsdp or fused_amp):
        module.clip_gradients(optimizer, gradient_clip_val=clip_val, gradient_clip_algorithm=algorithm)
        return
    if precision.scaler is not None and optimizer_handles_unscaling(optimizer):
        # the precision plugins' optimizer_step never unscales a fused optimizer's gradients: still scaled here
        precision.scaler.unscale_(optimizer)
    if fsdp:
        module.trainer.strategy.model.clip_grad_norm_(clip_val)
    else:  # Precision's own clipping, without MixedPrecision's refusal (which only holds for scaled gradients)
        Precision.clip_gradients(precision, optimizer, clip_val, algorithm)
