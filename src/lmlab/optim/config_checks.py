"""`optimizer=muon`'s keys: each key's type and range, keys it does not take, and what it does not combine with
(its FSDP rule is `lmlab.parallel.fsdp_config`'s)."""

from __future__ import annotations

from omegaconf import OmegaConf

from lmlab.optim import ADJUST_LR_FNS, MUON, MUON_KEYS
from lmlab.utils.key_checks import KeyChecks, Select, boolean, integer, non_negative_number, one_of

KEYS: KeyChecks = {
    "optimizer.momentum": (lambda v: non_negative_number(v) and v < 1, "must be in [0, 1) (e.g. 0.95)"),
    "optimizer.nesterov": (boolean, "must be true or false"),
    "optimizer.ns_steps": (lambda v: integer(v, 1) and v < 100, "must be an integer from 1 to 99 (e.g. 5)"),
    "optimizer.adjust_lr_fn": one_of(ADJUST_LR_FNS),
}


def problems(select: Select) -> list[str]:
    """Keys `optimizer=muon` does not take (AdamW's are refused by Hydra's struct check alone, which a `+key`
    override passes), and peft, which it does not combine with."""
    optimizer = select("optimizer")
    if not OmegaConf.is_dict(optimizer) or optimizer.get("_target_") != MUON:
        return []
    found = [f"optimizer.{key} is not a key of optimizer=muon (its keys: {', '.join(MUON_KEYS)})"
             for key in optimizer if key not in (*MUON_KEYS, "_target_")]
    if select("peft"):
        found.append("optimizer=muon with peft: Muon on the low-rank adapters is untested here; use optimizer=adamw")
    return found
