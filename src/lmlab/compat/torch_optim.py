"""torch.optim's private names that lmlab uses.

- `orthogonalise`, `adjusted_lr`: the Newton–Schulz orthogonalisation and the learning-rate adjustment of
  `torch.optim.Muon` (`torch/optim/_muon.py`), so that Muon over FSDP's shards (lmlab.optim.muon.ShardedMuon)
  computes exactly what `torch.optim.Muon` computes on whole matrices.
"""

from __future__ import annotations

import torch

CHECKED_VERSION = "2.13.0"


def orthogonalise(matrix: torch.Tensor, coefficients: tuple[float, float, float], steps: int,
                  eps: float) -> torch.Tensor:
    """`torch.optim.Muon`'s orthogonalisation of one whole 2-D matrix (in bfloat16, as torch's)."""
    from torch.optim._muon import _zeropower_via_newtonschulz

    return _zeropower_via_newtonschulz(matrix, coefficients, steps, eps)


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """`torch.optim.Muon`'s learning rate for a matrix of `shape` (`adjust_lr_fn`: original or match_rms_adamw)."""
    from torch.optim._muon import _adjust_lr

    return _adjust_lr(lr, adjust_lr_fn, shape)
