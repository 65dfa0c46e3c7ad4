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
from pathlib import Path

import torch

from lmlab.models.blocks import transformer_blocks


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


def compile_blocks(model: torch.nn.Module, mode: str | None = None) -> int:
    """Compile each block in place (parameter names unchanged); dynamo traces the first and reuses its graph
    for the others, whose parameters are inputs of the same graph. Returns the number of blocks."""
    blocks = transformer_blocks(model)
    for block in blocks:
        block.compile(mode=mode, dynamic=False)
    return len(blocks)


def compile_counts() -> dict[str, int]:
    """What this launch compiled so far: graphs dynamo captured, inductor graphs compiled and loaded from cache."""
    from torch._dynamo.utils import counters

    return {"graphs": counters["stats"]["unique_graphs"],
            "inductor_compiled": counters["inductor"]["fxgraph_cache_miss"],
            "inductor_from_cache": counters["inductor"]["fxgraph_cache_hit"]}
