"""`optimizer=muon`: Muon for the transformer blocks' weight matrices, AdamW for everything else, as one optimizer.

Muon (Jordan et al. 2024) orthogonalises each matrix's momentum, which only makes sense for the hidden matrices;
embeddings, the output layer (tied or not), norm gains and biases keep AdamW (`muon_groups`). Lightning steps,
clips, schedules and checkpoints one optimizer, so `MuonWithAdamW` is one `torch.optim.Optimizer` whose groups
are a `torch.optim.Muon`'s and a `torch.optim.AdamW`'s: the scheduler writes each group's `lr` where its optimizer
reads it, and `state_dict` is torch's own format over both (which DCP's sharded checkpoints need).

Under FSDP2 the parameters and gradients are DTensor shards, and Newton–Schulz needs whole matrices:
`ShardedMuon` gathers each update, orthogonalises it and keeps this rank's slice, as torchtitan's DistMuon does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.distributed.tensor import DTensor, distribute_tensor

from lmlab.compat.torch_optim import adjusted_lr, orthogonalise

MUON_GROUP = "muon"  # the key of each parameter group saying which optimizer steps it (kept in checkpoints)


def muon_groups(model: torch.nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each group split in two: the blocks' 2-D weights (`muon: True`) and the rest (`muon: False`). Embeddings
    are never Muon's, even where a model counts them among its blocks (BERT's `_no_split_modules`)."""
    from lmlab.models.blocks import transformer_blocks  # transformers: only where a model is split
    from lmlab.models.mup import embedding_weights

    embeddings = embedding_weights(model)
    hidden = {id(p) for block in transformer_blocks(model) for p in block.parameters()
              if p.ndim == 2 and id(p) not in embeddings}
    split = []
    for group in groups:
        for muon in (True, False):
            params = [p for p in group["params"] if (id(p) in hidden) == muon]
            if params:
                split.append({**group, "params": params, MUON_GROUP: muon})
    return split


def mup_lr_divisor(multiplier: float, adjust_lr_fn: str | None) -> float:
    """What μP divides the hidden matrices' lr by under Muon, at m = width / base width.

    μP needs each hidden update's spectral norm independent of width (Yang, Simon & Bernstein 2023). Adam's
    update is nearly low-rank, so its entries must shrink as 1/m (lmlab.models.mup); Muon's is orthogonalised,
    spectral norm ~1 times the adjusted lr: `match_rms_adamw` multiplies lr by 0.2·√max(fan_out, fan_in), which
    grows as √m, so lr / √m; `original` multiplies it by √max(1, fan_out / fan_in), which does not grow, so lr.
    """
    return multiplier**0.5 if adjust_lr_fn == "match_rms_adamw" else 1.0


class ShardedMuon(torch.optim.Muon):
    """`torch.optim.Muon`, also over DTensor parameters (FSDP2): the momentum stays sharded (it is elementwise),
    each update is gathered whole for Newton–Schulz and this rank's slice of the result is applied."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        if not any(isinstance(p, DTensor) for group in self.param_groups for p in group["params"]):
            return super().step(closure)  # whole matrices (one process, DDP): torch's own step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._step_sharded(p, group)
        return loss

    def _step_sharded(self, p: DTensor, group: dict[str, Any]) -> None:
        # torch.optim._muon._single_tensor_muon, with the gather and the slice around Newton–Schulz
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p.grad)
        buf = state["momentum_buffer"]
        buf.lerp_(p.grad, 1 - group["momentum"])
        update = p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
        whole = orthogonalise(update.full_tensor(), group["ns_coefficients"], group["ns_steps"], group["eps"])
        # every rank holds the same whole matrix: src_data_rank=None keeps the local slice, no communication
        update = distribute_tensor(whole, p.device_mesh, p.placements, src_data_rank=None)
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(update, alpha=-adjusted_lr(group["lr"], group["adjust_lr_fn"], p.shape))


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon for the groups marked `muon: True` (`muon_groups`), AdamW for the others, stepped as one optimizer.

    `lr` and `weight_decay` are both optimizers' (with `adjust_lr_fn="match_rms_adamw"` Muon's updates have
    AdamW's RMS, so AdamW's learning rates carry over), unless a group sets its own (lmlab.modules.base sets the
    weight decay per group); `momentum`, `nesterov`, `ns_steps`, `adjust_lr_fn` are Muon's; `betas`, `eps`,
    `fused` are AdamW's.
    """

    def __init__(self, params: Iterable[dict[str, Any]], lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
                 adjust_lr_fn: str | None = "match_rms_adamw", betas: tuple[float, float] = (0.9, 0.95),
                 eps: float = 1e-8, fused: bool | None = None):
        groups = list(params)
        if not all(isinstance(g, dict) and MUON_GROUP in g for g in groups):
            raise ValueError(f"MuonWithAdamW steps parameter groups marked {MUON_GROUP}: true or false "
                             "(lmlab.optim.muon.muon_groups), not plain parameters")
        self.muon = ShardedMuon([g for g in groups if g[MUON_GROUP]], lr=lr, weight_decay=weight_decay,
                                momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        self.adamw = torch.optim.AdamW([g for g in groups if not g[MUON_GROUP]], lr=lr, weight_decay=weight_decay,
                                       betas=tuple(betas), eps=eps, fused=fused)
        super().__init__(self.muon.param_groups + self.adamw.param_groups, {})
        self._share_groups_and_state()

    def _share_groups_and_state(self) -> None:
        """The two optimizers step this one's groups and keep their state in its `state` (one state_dict)."""
        self.muon.param_groups = [g for g in self.param_groups if g[MUON_GROUP]]
        self.adamw.param_groups = [g for g in self.param_groups if not g[MUON_GROUP]]
        self.muon.state = self.adamw.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)  # replaces `param_groups` and `state` with new objects
        self._share_groups_and_state()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss
