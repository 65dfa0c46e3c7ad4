"""A test callback: the total gradient norm before clipping and as the optimizer step sees it."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch


def total_norm(parameters) -> float:
    grads = [p.grad.detach().float() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


class GradNormProbe(L.Callback):
    """Writes `[[norm before clipping, norm at the optimizer step], ...]` to `output_file` at the end."""

    def __init__(self, output_file: str):
        self.output_file = Path(output_file)
        self.norms: list[list[float]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:  # after optimizer.step, which runs the closure (backward, clipping) first
            optimizer.register_step_post_hook(lambda opt, args, kwargs: self.norms[-1].append(
                total_norm(p for group in opt.param_groups for p in group["params"])))

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        self.norms.append([total_norm(pl_module.parameters())])  # Lightning calls this before clipping

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.output_file.write_text(json.dumps(self.norms))
