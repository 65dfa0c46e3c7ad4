"""Approach 2 of Hoffmann et al. 2022: at each compute budget, a parabola of loss against log N; its minimum is
that budget's compute-optimal N (and D = C / 6N); then N_opt ∝ C^a and D_opt ∝ C^b by least squares in log-log."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import linregress

# Runs whose FLOPs lie within this factor of a budget's smallest belong to it, when the runs do not name their
# budget (an IsoFLOP ladder's runs do: `scaling.flops`); Chinchilla's budgets are a factor of 2 to 3 apart.
BUDGET_SPREAD = 1.3


@dataclass(frozen=True)
class Parabola:
    """Loss = c2·x² + c1·x + c0 with x = log N at one compute budget."""

    flops: float
    coefficients: tuple[float, float, float]
    params: list[float]
    losses: list[float]

    @property
    def optimal_params(self) -> float:
        c2, c1, _ = self.coefficients
        return math.exp(-c1 / (2 * c2))

    @property
    def optimal_tokens(self) -> float:
        return self.flops / (6 * self.optimal_params)

    @property
    def min_loss(self) -> float:
        return float(np.polyval(self.coefficients, math.log(self.optimal_params)))


@dataclass(frozen=True)
class IsoFlopFit:
    parabolas: list[Parabola]
    params_exponent: float  # a in N_opt = k_n · C^a
    params_coefficient: float
    tokens_exponent: float  # b in D_opt = k_d · C^b
    tokens_coefficient: float

    def optimum(self, flops: float) -> tuple[float, float]:
        return (self.params_coefficient * flops**self.params_exponent,
                self.tokens_coefficient * flops**self.tokens_exponent)

    def to_dict(self) -> dict:
        return {"a": self.params_exponent, "b": self.tokens_exponent, "k_params": self.params_coefficient,
                "k_tokens": self.tokens_coefficient,
                "budgets": [{"flops": p.flops, "optimal_params": p.optimal_params, "optimal_tokens": p.optimal_tokens,
                             "min_loss": p.min_loss, "runs": len(p.params)} for p in self.parabolas]}


def group_budgets(flops: np.ndarray, budgets: list[float | None] | None = None,
                  spread: float = BUDGET_SPREAD) -> dict[float, np.ndarray]:
    """Indices of the runs at each compute budget: the budget a run names, else runs within `spread` of the
    smallest FLOPs not yet grouped (keyed by their geometric mean)."""
    groups: dict[float, list[int]] = {}
    named = [i for i in range(len(flops)) if budgets and budgets[i]]
    for i in named:
        groups.setdefault(float(budgets[i]), []).append(i)
    rest = sorted((i for i in range(len(flops)) if i not in set(named)), key=lambda i: flops[i])
    while rest:
        group = [i for i in rest if flops[i] <= flops[rest[0]] * spread]
        groups[float(np.exp(np.mean(np.log(flops[group]))))] = group
        rest = rest[len(group):]
    return {c: np.array(sorted(idx)) for c, idx in sorted(groups.items())}


def fit_parabola(flops: float, params: np.ndarray, loss: np.ndarray) -> Parabola | None:
    """None when the budget has fewer than 3 model sizes, or its curve has no minimum between its smallest and
    largest model: it opens downward, or its vertex lies outside them (a curve that mostly rises, fitted with its
    vertex at N < 1 on a real CPU ladder)."""
    if len(np.unique(params)) < 3:
        return None
    coefficients = np.polyfit(np.log(params), loss, 2)
    if coefficients[0] <= 0:
        return None
    parabola = Parabola(flops, tuple(float(c) for c in coefficients), params.tolist(), loss.tolist())
    return parabola if params.min() <= parabola.optimal_params <= params.max() else None


def fit_isoflops(params: np.ndarray, flops: np.ndarray, loss: np.ndarray,
                 budgets: list[float | None] | None = None) -> IsoFlopFit | None:
    """The IsoFLOP fit, or None with fewer than 2 budgets that each have a parabola with a minimum."""
    parabolas = [p for c, idx in group_budgets(flops, budgets).items()
                 if (p := fit_parabola(c, params[idx], loss[idx])) is not None]
    if len(parabolas) < 2:
        return None
    log_c = np.log([p.flops for p in parabolas])
    n_fit = linregress(log_c, np.log([p.optimal_params for p in parabolas]))
    d_fit = linregress(log_c, np.log([p.optimal_tokens for p in parabolas]))
    return IsoFlopFit(parabolas, float(n_fit.slope), math.exp(n_fit.intercept), float(d_fit.slope),
                      math.exp(d_fit.intercept))
