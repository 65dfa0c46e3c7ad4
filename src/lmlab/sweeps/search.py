"""Optuna searches: the search space from Hydra's override grammar, where a study lives, how a trial ended.

Shared by the sweeper (`hydra_plugins.lmlab`), the pruning callback that runs inside each trial and
`lmlab-compare`; importing this module does not import Optuna.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SWEEPER_TARGET = "hydra_plugins.lmlab.optuna_sweeper.OptunaSweeper"
STUDY_FILE = "optuna.db"     # the default storage, in the sweep directory
DIRECTIONS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}


def default_storage(sweep_dir: str | Path) -> str:
    """SQLite in the sweep directory: relaunching the same `sweep_name` continues the study."""
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_FILE}"


def search_space(params: Mapping[str, str], arguments: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Optuna distributions of the searched keys, and the overrides every trial shares.

    `params` (the sweeper's config) and the command line's sweep overrides use Hydra's grammar:
    `choice(a, b)` / `a,b`, `range(1, 10)`, `interval(0.0, 0.2)`, `tag(log, interval(1e-5, 1e-2))`.
    The command line wins over `params` for the same key.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    distributions: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        distributions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            distributions[key] = _distribution(override)
        else:
            fixed[key] = override.input_line
    return distributions, list(fixed.values())


def _distribution(override) -> Any:
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        numbers = (value.start, value.stop, value.step)
        if all(isinstance(x, int) for x in numbers):
            return IntDistribution(value.start, value.stop - 1, step=value.step)
        return FloatDistribution(value.start, value.stop, step=value.step)
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ValueError(f"{override.input_line}: not a search space Optuna understands (choice, range, interval)")


def param_override(key: str, value: Any) -> str:
    """`key=value` with the shortest text that gives the same value back (`optimizer.lr=0.00019`)."""
    return f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"


def objective_values(run_dir: str | Path, objectives: Mapping[str, str], monitor: str, returned: Any) -> list[float]:
    """The value of each objective for a finished trial.

    The monitored metric is what the trial returned; another objective is a key of the run's summary.json
    (`tokens_per_sec`), else its last value in metrics.csv.
    """
    run_dir = Path(run_dir)
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    rows: list[dict[str, str]] = []
    if (run_dir / "metrics.csv").is_file():
        with open(run_dir / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    values = []
    for name in objectives:
        if name == monitor and returned is not None:
            values.append(float(returned))
        elif summary.get(name) is not None:
            values.append(float(summary[name]))
        else:
            logged = [row[name] for row in rows if row.get(name) not in (None, "")]
            if not logged:
                raise ValueError(f"objective {name!r}: not in {summary_file.name} or metrics.csv of {run_dir}")
            values.append(float(logged[-1]))
    return values


def rerun_command(fixed: Sequence[str], params: Mapping[str, Any]) -> str:
    """The command line that trains one trial again, on its own (no search, no Hydra settings)."""
    keep = [o for o in fixed if not o.lstrip("+~").startswith(("hparams_search=", "hydra.", "hydra/", "sweep_name="))]
    return " ".join(["lmlab-train", *keep, *(param_override(k, v) for k, v in params.items())])
