"""The points a scaling law is fitted to, one per run: parameters N, tokens D, training FLOPs C = 6·N·D and the
final validation loss; read from run or sweep directories (what every run writes) or from a CSV."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from lmlab.compare import find_runs, load_run
from lmlab.scaling.params import WIDTH_KEYS, count_params

# A command line that sets the width overrides the IsoFLOP preset's scaling.tokens_per_param
WIDTH_OVERRIDES = {f"model.config.{key}" for key in WIDTH_KEYS}


@dataclass
class Point:
    """One run: N (as `count` says), D, C = 6·N·D, the loss; and what the run's command line was."""

    name: str
    params: float
    tokens: float
    loss: float
    budget: float | None = None  # the compute budget the run was laid out for (an IsoFLOP ladder's scaling.flops)
    overrides: dict[str, str] = field(default_factory=dict)
    tokens_per_step: float | None = None
    tokens_per_param: float | None = None  # the ladder's D/N its width was derived from (scaling.tokens_per_param)

    @property
    def flops(self) -> float:
        return training_flops(self.params, self.tokens)


def columns(points: list[Point], *names: str) -> list[np.ndarray]:
    """One array per field of `points` (e.g. "params", "tokens", "loss"), in the order of `points`."""
    return [np.array([getattr(p, name) for p in points]) for name in names]


def training_flops(params: float, tokens: float) -> float:
    """C = 6·N·D (Kaplan et al. 2020, Hoffmann et al. 2022): forward and backward through N weights per token."""
    return 6 * params * tokens


def _number(row: dict[str, str], key: str, where: str) -> float:
    try:
        value = float(row[key])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key}={row.get(key)!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: {key}={row[key]} must be a positive number")
    return value


def read_csv(path: Path) -> list[Point]:
    """Rows with `params`, `loss` and `tokens` (or `flops`, then D = flops / 6·params); other columns ignored."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        if not {"params", "loss"} <= columns or not columns & {"tokens", "flops"}:
            raise ValueError(f"{path}: expected the columns params,tokens,loss (or params,flops,loss); "
                             f"found {','.join(reader.fieldnames or []) or 'none'}")
        points = []
        for line, row in enumerate(reader, start=2):
            where = f"{path}, line {line}"
            params, loss = _number(row, "params", where), _number(row, "loss", where)
            tokens = (_number(row, "tokens", where) if row.get("tokens") not in (None, "")
                      else _number(row, "flops", where) / (6 * params))
            points.append(Point(f"{path.name}:{line}", params, tokens, loss))
    return points


def model_config(run_dir: Path, config: dict) -> tuple[dict, int | None]:
    """The model's config and vocabulary: the export's config.json (the trained model as built, the tokenizer's
    vocabulary), else config.yaml's `model.config` and `data.vocab_size`."""
    export = run_dir / "hf" / "config.json"
    if export.is_file():
        exported = json.loads(export.read_text())
        return exported, exported.get("vocab_size")
    return (config.get("model") or {}).get("config") or {}, (config.get("data") or {}).get("vocab_size")


def read_run(run_dir: Path, count: str, metric: str) -> Point | str:
    """The run's point, or why it has none (unfinished, failed, no `metric`)."""
    run = load_run(run_dir)
    if run.error or not run.summary:
        return f"{run_dir}: {'failed' if run.error else 'not finished'} (no summary.json)"
    loss = run.summary["final"] if run.summary.get("monitor") == metric else None
    loss = loss if loss is not None else run.final(metric)
    if loss is None:
        return f"{run_dir}: no {metric} logged"
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
    model, vocab_size = model_config(run_dir, config)
    if not model.get("_target_") and not model.get("model_type"):
        return f"{run_dir}: no model config (config.yaml's model.config or hf/config.json)"
    tokens, steps = run.summary.get("tokens_seen"), run.summary.get("global_step")
    if not tokens:
        return f"{run_dir}: no tokens seen in summary.json"
    scaling = config.get("scaling") or {}
    budget, ratio = scaling.get("flops"), scaling.get("tokens_per_param")
    derived = ratio and not WIDTH_OVERRIDES & set(run.overrides)  # else the command line set the width
    return Point(run.path.name, float(count_params(model, vocab_size, count)), float(tokens), float(loss),
                 float(budget) if budget else None, run.overrides, tokens / steps if steps else None,
                 float(ratio) if derived else None)


def ladder_count(paths: list[Path]) -> str:
    """The parameter count the runs spent their budgets with (config.yaml's `scaling.params`, as the IsoFLOP preset
    passes it to its resolver), so that C = 6ND means in the fit what it meant in the runs; "non_embedding" when
    they name none."""
    counts = set()
    for run_dir in find_runs(paths):
        if (run_dir / "config.yaml").is_file():
            config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
            counts.add((config.get("scaling") or {}).get("params"))
    counts.discard(None)
    if len(counts) > 1:
        raise ValueError(f"the runs counted their parameters differently (scaling.params: {', '.join(sorted(counts))})"
                         ": fit each ladder on its own, or choose with --params")
    return counts.pop() if counts else "non_embedding"


def read_points(paths: list[Path], count: str, metric: str) -> tuple[list[Point], list[str]]:
    """Points from one CSV file, or from run and sweep directories; and the runs left out, with why."""
    if len(paths) == 1 and paths[0].is_file():
        return read_csv(paths[0]), []
    if files := [p for p in paths if p.is_file()]:
        raise ValueError(f"{files[0]}: give one CSV file, or run and sweep directories")
    points, skipped = [], []
    run_dirs = find_runs(paths)
    several = len({run_dir.parent for run_dir in run_dirs}) > 1  # then a run is named `<sweep>/<job>`
    for run_dir in run_dirs:
        point = read_run(run_dir, count, metric)
        if isinstance(point, Point) and several:
            point.name = f"{run_dir.parent.name}/{run_dir.name}"
        (skipped if isinstance(point, str) else points).append(point)
    return points, skipped
