"""What `trainer=fsdp`'s keys may be, checked with every other config error before anything runs.

Light on purpose (no torch, no Lightning): `lmlab.runs.validate` calls `problems` before the run directory is
claimed; `FSDPStrategy` reads the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lmlab.optim import MUON
from lmlab.utils.key_checks import KeyChecks, boolean, key_problems, one_of, optional_boolean

FSDP_STRATEGY = "lmlab.parallel.fsdp.FSDPStrategy"  # the `_target_` of lmlab's FSDP strategy (conf/trainer/fsdp.yaml)
SHARDING = ("full", "hybrid", "grad_op")
OFFLOAD_NEEDS_GPU = ("trainer.strategy.cpu_offload=true needs a GPU (FSDP pins host memory to copy each block to "
                     "the device); on the CPU the parameters are in host memory already: drop it")


KEYS: KeyChecks = {
    "trainer.strategy.sharding": one_of(SHARDING),
    "trainer.strategy.cpu_offload": (optional_boolean, "must be true or false"),
    "trainer.strategy.sharded_checkpoint": (boolean, "must be true or false"),
}


def problems(select: Callable[[str], object]) -> list[str]:
    """One line per problem of the FSDP keys; `select(key)` reads the composed config."""
    problems = []
    if select("trainer.strategy.cpu_offload") is True and select("trainer.accelerator") == "cpu":
        problems.append(OFFLOAD_NEEDS_GPU)
    if select("trainer.strategy._target_") != FSDP_STRATEGY:
        return problems
    if select("optimizer._target_") == MUON and select("trainer.strategy.cpu_offload") is True:
        problems.append("optimizer=muon does not support trainer.strategy.cpu_offload=true (Muon gathers whole "
                        "gradients over the device mesh; offloaded shards live in host memory): drop cpu_offload")
    if select("task.module.fused_loss") is True:
        problems.append("task.module.fused_loss=true does not run under trainer=fsdp (it multiplies by the head's "
                        "weight outside the model's forward, where FSDP has not gathered it): drop it")
    return problems


def strategy_problems(**strategy: Any) -> list[str]:
    """`KEYS` and `problems` for an `FSDPStrategy` built outside `lmlab-train` (from Python), which checks them
    before anything runs."""
    cfg = OmegaConf.create({"trainer": {"strategy": {"_target_": FSDP_STRATEGY, **strategy}}})
    return key_problems(cfg, KEYS) + problems(lambda key: OmegaConf.select(cfg, key, default=None))


def require_sharding_strategy(cfg: Any, ckpt_path: Path) -> None:
    """A sharded checkpoint (a directory) resumes under `trainer=fsdp` only, on any number of processes."""
    from lmlab.checkpoint.sharded import is_sharded_checkpoint
    from lmlab.errors import LmlabError

    if not is_sharded_checkpoint(ckpt_path):
        return
    if OmegaConf.select(cfg, "trainer.strategy._target_", default=None) != FSDP_STRATEGY:
        raise LmlabError(f"{ckpt_path} is a sharded checkpoint (written by trainer=fsdp): resume it with trainer=fsdp "
                         f"(any number of devices), or convert it to one file with `lmlab-consolidate {ckpt_path} "
                         "OUT.ckpt` and pass ckpt_path=OUT.ckpt")
