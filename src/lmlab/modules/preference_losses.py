"""The preference losses by TRL's names, on per-pair sequence log-probabilities.

    sigmoid  DPO (Rafailov et al. 2023): -log σ(β Δ), Δ = (log π/π_ref)(chosen) - (log π/π_ref)(rejected);
             with label smoothing ε, conservative DPO: -(1-ε) log σ(β Δ) - ε log σ(-β Δ)
    hinge    SLiC: max(0, 1 - β Δ)
    ipo      IPO (Azar et al. 2023), length-normalised as TRL does: (Δ_c/|c| - Δ_r/|r| - 1/(2β))²
    simpo    SimPO (Meng et al. 2024), reference-free: -log σ(β (mean log π(c) - mean log π(r)) - γ), ε as above

Rewards (what TRL logs as `rewards/*`): β·(log π - log π_ref) of each response; for SimPO, β·mean log π. Equal to
TRL 1.16's `DPOTrainer` (sigmoid, hinge, ipo) and its `CPOTrainer` with `loss_type="simpo"` to float rounding
(tests/unit/modules/test_preference_vs_trl.py). TRL's DPO sigmoid has no label smoothing; ε=0 here is the same loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lmlab.contracts import IGNORE_INDEX
from lmlab.modules.options import PREFERENCE_LOSSES as LOSS_TYPES
from lmlab.modules.options import REFERENCE_FREE_LOSSES

REFERENCE_FREE = REFERENCE_FREE_LOSSES


@dataclass
class SequenceLogps:
    """Summed log-probabilities of each pair's chosen and rejected response, and their token counts."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor


@dataclass
class PreferenceLoss:
    """Per-pair losses and rewards, and the log-probabilities TRL logs as `logps/*`."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> SequenceLogps:
    """Each pair's summed log-probability of its labelled response tokens, in fp32, from the logits of a
    preference batch (`lmlab.data.preference_batch`: chosen rows, then rejected rows)."""
    targets = labels[:, 1:]
    token_logps = -F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), reduction="none",
                                   ignore_index=IGNORE_INDEX).view_as(targets)
    sums, counts = token_logps.sum(-1), (targets != IGNORE_INDEX).sum(-1)
    (chosen, rejected), (chosen_tokens, rejected_tokens) = sums.chunk(2), counts.chunk(2)
    return SequenceLogps(chosen, rejected, chosen_tokens, rejected_tokens)


def _smoothed_sigmoid(logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


def preference_loss(loss_type: str, policy: SequenceLogps, reference: SequenceLogps | None, beta: float,
                    label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> PreferenceLoss:
    """`loss_type`'s per-pair loss; `reference` is None only for the reference-free ones."""
    if loss_type == "simpo":
        chosen, rejected = policy.chosen / policy.chosen_tokens, policy.rejected / policy.rejected_tokens
        losses = _smoothed_sigmoid(beta * (chosen - rejected) - simpo_gamma, label_smoothing)
        return PreferenceLoss(losses, beta * chosen.detach(), beta * rejected.detach(), chosen.detach(),
                              rejected.detach())
    chosen_ratio, rejected_ratio = policy.chosen - reference.chosen, policy.rejected - reference.rejected
    delta = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = _smoothed_sigmoid(beta * delta, label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    elif loss_type == "ipo":
        normalised = chosen_ratio / policy.chosen_tokens - rejected_ratio / policy.rejected_tokens
        losses = (normalised - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown preference loss {loss_type!r}; one of {LOSS_TYPES}")
    return PreferenceLoss(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach(),
                          policy.chosen.detach(), policy.rejected.detach())
