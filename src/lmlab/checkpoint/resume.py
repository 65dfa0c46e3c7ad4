"""Where a launch of `lmlab-train` starts from: nothing, the newest valid checkpoint, or a given file.

The run directory is deterministic (outputs/<experiment>/<run_name>, or `run_dir=`), so launching the
same command again (by hand, or a SLURM requeue) finds its checkpoints. `resume` chooses what happens:

- `auto` (default; `true` is the same): continue from the newest checkpoint that loads; a finished run
  (its `finished.json` marker exists) is not trained again.
- `force`: continue even a finished run (e.g. after raising `trainer.max_steps`).
- `never` (`false`): start from scratch; refused when the run directory already holds checkpoints, so
  an earlier run is never overwritten.

`ckpt_path=<file>` resumes from that file whatever `resume` says. `branch_from=<file>` starts a run without
checkpoints of its own from another run's (a cool-down branch: `lmlab.checkpoint.branch`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.checkpoint.position import check_global_batch
from lmlab.checkpoint.reader import checkpoint_files
from lmlab.config_keys import BUDGET_KEYS, is_config_change
from lmlab.errors import LmlabError

log = logging.getLogger(__name__)

FINISHED_MARKER = "finished.json"
RESUMES_FILE = "resumes.jsonl"
MODES = {"auto": "auto", "true": "auto", "force": "force", "never": "never", "false": "never"}


@dataclass
class ResumePlan:
    """What this launch does: `ckpt_path` to resume from (None: fresh start) or `finished` (do nothing)."""

    ckpt_path: str | None = None
    step: int = 0  # the global step of `ckpt_path` (0: a fresh start)
    finished: dict | None = None
    skipped: list[str] = field(default_factory=list)  # newer checkpoints that failed to load
    config_changes: list[str] = field(default_factory=list)
    budget_changes: list[str] = field(default_factory=list)  # `trainer.max_steps 10 -> 20`
    budget: dict = field(default_factory=dict)  # this launch's BUDGET_KEYS, kept in resumes.jsonl
    on_budget_change: str = "replan"  # what happens to the LR schedule then (lmlab.modules.schedule)
    forced_fresh: bool = False  # resume=force found nothing to continue: said in one line, not silently
    branch: dict | None = None  # a cool-down branch's first launch: its parent and step (lmlab.checkpoint.branch)


def resume_mode(value: object) -> str:
    mode = MODES.get(str(value).lower())
    if mode is None:
        raise LmlabError(f"resume={value!r} is not one of auto, force, never (true/false also work)")
    return mode


def checkpoint_step(path: Path) -> int:
    """The global step stored in a checkpoint; raises if the file is truncated, damaged or not a checkpoint.

    `verify_checkpoint` compares the file with the SHA-256 recorded when it was written (damage inside a
    tensor); `mmap=True` reads the zip directory (at the end of the file, so truncation fails here)
    without loading the tensors.
    """
    from lmlab.checkpoint.integrity import verify_checkpoint
    from lmlab.checkpoint.reader import checkpoint_metadata

    verify_checkpoint(path)
    return int(checkpoint_metadata(path)["global_step"])


def newest_valid_checkpoint(run_dir: Path) -> tuple[Path | None, int, list[str]]:
    """The checkpoint with the highest step that loads, its step, and the ones skipped.

    On a tie `last.ckpt` wins (docs/resume.md promises it; the best checkpoint of the same step holds the same
    weights, but a user reading the log looks for last), then the newest file.
    """
    candidates, skipped = [], []
    for path in checkpoint_files(run_dir):
        try:
            candidates.append((checkpoint_step(path), path.name == "last.ckpt", path.stat().st_mtime, path))
        except Exception as e:  # noqa: BLE001 - any failure to load means "not usable"
            skipped.append(f"{path} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    if not candidates:
        return None, 0, skipped
    step, _, _, newest = max(candidates)
    return newest, step, skipped


def config_changes(saved: dict, current: dict, keys: tuple[str, ...] | None = None) -> list[str]:
    """`key: old -> new` for every leaf that differs between two resolved configs (launch keys and the
    budget ignored), or only for the leaves under `keys`."""
    old, new = _flatten(saved), _flatten(current)
    changes = []
    for key in sorted(old.keys() | new.keys()):
        wanted = key.startswith(keys) if keys else is_config_change(key)
        if not wanted or old.get(key, "<unset>") == new.get(key, "<unset>"):
            continue
        changes.append(f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}")
    return changes


def _flatten(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def runs_with_checkpoints(parent: Path, exclude: Path, most: int = 3) -> list[str]:
    """The names of (at most `most`) run directories in `parent` that hold checkpoints, newest first."""
    runs = [d for d in parent.glob("*") if d != exclude and d.is_dir() and checkpoint_files(d)]
    return [d.name for d in sorted(runs, key=lambda d: d.stat().st_mtime, reverse=True)[:most]]


def plan_resume(cfg: DictConfig, run_dir: Path) -> ResumePlan:
    """Decide where this launch starts; raises `LmlabError` for a bad `ckpt_path` or a refused restart."""
    from lmlab.utils.provenance import resolved_config

    mode = resume_mode(cfg.get("resume", "auto"))
    plan = ResumePlan()
    if cfg.get("ckpt_path"):
        from lmlab.checkpoint.reader import checkpoint_metadata, intact_checkpoint

        path = intact_checkpoint(Path(cfg.ckpt_path), "ckpt_path")
        plan.step = int(checkpoint_metadata(path)["global_step"])
        plan.ckpt_path = str(path)
    else:
        marker = run_dir / FINISHED_MARKER
        if marker.is_file() and mode == "auto":
            plan.finished = json.loads(marker.read_text())
            return plan
        newest, step, plan.skipped = newest_valid_checkpoint(run_dir)
        if newest is not None and mode == "never":
            raise LmlabError(f"resume=never but {run_dir} already holds checkpoints of an earlier run; "
                             "pick a new run_name= or run_dir=, or resume it with resume=auto")
        if mode != "never" and newest is not None:
            plan.ckpt_path, plan.step = str(newest), step
        elif cfg.get("branch_from"):  # read until the branch has checkpoints of its own
            from lmlab.checkpoint.branch import branch_start

            plan.ckpt_path, plan.step, plan.branch = branch_start(Path(cfg.branch_from))
        plan.forced_fresh = mode == "force" and plan.ckpt_path is None
    if plan.ckpt_path:
        check_global_batch(cfg, plan.ckpt_path)
    saved = run_dir / "config.yaml"
    if plan.ckpt_path and saved.is_file():
        old, new = OmegaConf.to_container(OmegaConf.load(saved)), resolved_config(cfg)
        plan.config_changes = config_changes(old, new)
        plan.budget = {k: v for k, v in _flatten(new).items() if k.startswith(BUDGET_KEYS)}
        plan.budget_changes = config_changes(previous_budget(run_dir, old), plan.budget, BUDGET_KEYS)
        plan.on_budget_change = OmegaConf.select(cfg, "scheduler.on_budget_change", default="replan")
    return plan


def report(plan: ResumePlan, run_dir: Path) -> None:
    """Log the plan: skipped (corrupt) checkpoints and config changes are warnings."""
    for skipped in plan.skipped:
        log.warning("Skipping a checkpoint that does not load: %s", skipped)
    if plan.finished is not None:
        log.info("Run %s already finished at step %s (%s); nothing to do. Pass resume=force to train it further.",
                 run_dir, plan.finished.get("global_step"), run_dir / FINISHED_MARKER)
    elif plan.ckpt_path:
        log.info("Resuming from %s", plan.ckpt_path)
    elif plan.forced_fresh:
        beside = runs_with_checkpoints(run_dir.parent, exclude=run_dir)
        hint = f"; runs beside it with checkpoints: {', '.join(beside)} (continue one with run_name=<name>)"
        log.warning("resume=force found no checkpoint to continue in %s or %s: this is a new run, trained from "
                    "step 0%s", run_dir / "checkpoints", run_dir / "hpc_ckpt_*.ckpt", hint if beside else "")
    if plan.ckpt_path and plan.budget_changes:
        schedule = {"replan": "re-planned for the new budget", "continue": "continued as first planned"}
        log.info("Continuing this run from step %d with another budget (%s); the LR schedule is %s "
                 "(scheduler.on_budget_change=%s)", plan.step, "; ".join(plan.budget_changes),
                 schedule.get(plan.on_budget_change, plan.on_budget_change), plan.on_budget_change)
    if plan.config_changes:
        log.warning("The config differs from the one this run started with (%s):\n  %s",
                    run_dir / "config.yaml", "\n  ".join(plan.config_changes))


def previous_budget(run_dir: Path, first: dict) -> dict:
    """The budget the previous launch trained for: the newest `resumes.jsonl` entry's, else the first launch's."""
    budget = {k: v for k, v in _flatten(first).items() if k.startswith(BUDGET_KEYS)}
    path = run_dir / RESUMES_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                budget.update(json.loads(line).get("budget") or {})
            except ValueError:  # a line cut short by a kill
                continue
    return budget


def record_resume(run_dir: Path, overrides: list[str], plan: ResumePlan) -> None:
    """Append this launch to `resumes.jsonl`; the first launch's config.yaml and run.json stay as written.

    A finished run resumed (`resume=force`, `ckpt_path=`) loses its `finished.json` when training starts
    (`lmlab.runs.guard.RunGuard`), not here: a launch that fails before leaves it finished.
    """
    from lmlab.utils.provenance import launch_info

    entry = {**launch_info(overrides), "resumed_from": plan.ckpt_path, "config_changes": plan.config_changes,
             "budget": plan.budget}
    with (run_dir / RESUMES_FILE).open("a") as f:
        f.write(json.dumps(entry) + "\n")


def mark_finished(run_dir: Path, global_step: int, metric: float | None) -> None:
    """Write the end marker that stops `resume=auto` from training this run again."""
    info = {"global_step": global_step, "metric": metric, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (run_dir / FINISHED_MARKER).write_text(json.dumps(info, indent=2) + "\n")
