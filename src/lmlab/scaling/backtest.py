"""Hold out a ladder's largest compute budget, fit the law on the others, and compare its prediction there with
the best loss the runs reached: whether the law extrapolates, before `--budget` is trusted with a larger one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lmlab.scaling.isoflop import group_budgets
from lmlab.scaling.law import Law, bootstrap, fit_law, interval
from lmlab.scaling.points import Point, columns


@dataclass(frozen=True)
class Backtest:
    budget: float          # the held-out budget (FLOPs)
    fitted_runs: int       # the runs of the smaller budgets the law was fitted on
    predicted: float       # the law's loss at its compute-optimal N and D for `budget`
    measured: float        # the best final loss among the held-out budget's runs
    measured_run: str
    interval: tuple[float, float] | None  # of `predicted`, over the bootstrap's laws (each at its own optimum)
    law: Law = field(repr=False)                  # fitted on `fitted`
    fitted: list[Point] = field(repr=False)
    held_out: list[Point] = field(repr=False)

    @property
    def covered(self) -> bool | None:
        """Whether the measured best loss lies in the prediction's interval (None: no bootstrap)."""
        return None if self.interval is None else self.interval[0] <= self.measured <= self.interval[1]

    @property
    def error(self) -> float:
        """Relative error of the prediction (positive: the law expected a higher loss than was reached)."""
        return self.predicted / self.measured - 1

    def to_dict(self) -> dict:
        return {"budget": self.budget, "fitted_runs": self.fitted_runs, "predicted": self.predicted,
                "measured": self.measured, "measured_run": self.measured_run, "error": self.error,
                "interval": self.interval, "covered": self.covered, "law": self.law.to_dict()}


def hold_out_largest(points: list[Point], min_points: int, starts: int, samples: int = 0, seed: int = 0,
                     confidence: float = 0.95, progress: Callable[[int], None] | None = None) -> Backtest:
    """Fit on every budget but the largest (IsoFLOP groups: the runs' `scaling.flops`, else runs within a factor
    1.3 of FLOPs), with `samples` bootstrap resamples for the prediction's interval; raises ValueError when fewer
    than two budgets or `min_points` runs remain to fit."""
    flops = np.array([p.flops for p in points])
    groups = group_budgets(flops, [p.budget for p in points])
    if len(groups) < 2:
        raise ValueError("--backtest needs runs at two compute budgets or more: it holds out the largest")
    budget = max(groups)
    held = {int(i) for i in groups[budget]}
    fitted = [p for i, p in enumerate(points) if i not in held]
    if len(fitted) < min_points:
        raise ValueError(f"--backtest: {len(fitted)} runs below the largest budget ({budget:.3g} FLOPs); a fit of 5 "
                         f"parameters needs at least {min_points}")
    data = columns(fitted, "params", "tokens", "loss")
    law, _ = fit_law(*data, starts=starts)
    laws = bootstrap(*data, law, samples, seed, progress=progress) if samples else []
    held_out = [p for i, p in enumerate(points) if i in held]
    best = min(held_out, key=lambda p: p.loss)
    predicted = float(law.loss(*law.optimum(budget)))
    spread = interval([b.loss(*b.optimum(budget)) for b in laws], confidence) if laws else None
    return Backtest(budget, len(fitted), predicted, best.loss, best.name, spread, law, fitted, held_out)
