"""Cool-down branches: a run that starts from a checkpoint of another run (its parent) and trains to its own
budget, in its own run directory (Hägele et al. 2024: one long warmup-stable-decay run yields the loss of
several budgets, each a cool-down from a checkpoint of the stable phase).

`branch_from=<parent>/checkpoints/stepNNNNNN.ckpt` is read on the branch's first launch only: once the branch
has checkpoints of its own, a relaunch (after a kill, a requeue) resumes from them like any run. With
`scheduler=wsd` and `scheduler.on_budget_change=replan` (the default), a branch taken at a step of its own
budget's stable phase trains exactly as a run launched with that budget from the start.
"""

from __future__ import annotations

import json
from pathlib import Path

BRANCH_FILE = "branch.json"  # in the branch's run directory: its parent, checkpoint and branch step


def branch_start(checkpoint: Path) -> tuple[str, int, dict]:
    """The checkpoint to start from, its step, and the record of the branch; `LmlabError` for a bad file."""
    from lmlab.checkpoint.reader import checkpoint_metadata, intact_checkpoint

    path = intact_checkpoint(checkpoint, "branch_from")
    step = int(checkpoint_metadata(path)["global_step"])
    parent = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return str(path), step, {"parent": str(parent.resolve()), "checkpoint": str(path.resolve()), "step": step}


def write_branch(run_dir: Path, record: dict) -> None:
    (run_dir / BRANCH_FILE).write_text(json.dumps(record, indent=2) + "\n")
