"""`model.compile`: the whole step as one graph (`true`), or only what repeats (`regional`): one transformer
block compiled once and reused by every layer, plus the loss on the logits. Compiled artefacts (inductor's
FX graphs, AOTAutograd's and Triton's kernels) are cached under `paths.compile_cache_dir`, so the later jobs of
a sweep and a requeued job load them instead of compiling again.

Regional compilation traces one block, not twelve in a row: the first step comes sooner, and with the cache
warm a launch compiles nothing (`compile_counts` tells; `summary.json` records it). `model.compile_mode` is
passed to `torch.compile` (`reduce-overhead`: CUDA graphs; `max-autotune`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lmlab.errors import LmlabError

SCOPES = (False, True, "regional")
MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_compile_config(model: Mapping[str, Any]) -> None:
    if (scope := model.get("compile", False)) not in SCOPES:
        raise LmlabError(f"model.compile={scope!r}: expected false, true (the whole step) or regional (each block)")
    if (mode := model.get("compile_mode")) not in MODES:
        raise LmlabError(f"model.compile_mode={mode!r}: expected one of {', '.join(map(str, MODES))}")


def use_compile_cache(directory: str | Path) -> None:
    """Keep this process's (and its DDP children's) compiled artefacts in `directory`, and look there first;
    count this launch's compilations from zero (the jobs of a multirun may share a process)."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(directory).resolve())
    import torch._functorch.config
    import torch._inductor.config
    from torch._dynamo.utils import counters

    counters.clear()

    torch._inductor.config.fx_graph_cache = True  # the defaults of recent torch, kept whatever they become
    torch._functorch.config.enable_autograd_cache = True


def repeated_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's stack of layers: the longest `ModuleList` whose modules are all of one class."""
    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m)
              and len({type(block) for block in m}) == 1]
    if not stacks:
        raise ValueError(f"{type(model).__name__} has no stack of identical blocks to compile one by one")
    return max(stacks, key=len)


def compile_blocks(model: torch.nn.Module, mode: str | None = None) -> int:
    """Compile each block in place (parameter names unchanged); dynamo traces the first and reuses its graph
    for the others, whose parameters are inputs of the same graph. Returns the number of blocks."""
    blocks = repeated_blocks(model)
    for block in blocks:
        block.compile(mode=mode, dynamic=False)
    return len(blocks)


def compile_counts() -> dict[str, int]:
    """What this process compiled so far: graphs dynamo captured, inductor graphs compiled and loaded from cache."""
    from torch._dynamo.utils import counters

    return {"graphs": counters["stats"]["unique_graphs"],
            "inductor_compiled": counters["inductor"]["fxgraph_cache_miss"],
            "inductor_from_cache": counters["inductor"]["fxgraph_cache_hit"]}
