"""Approach 3 of Hoffmann et al. 2022: L(N, D) = E + A/N^α + B/D^β fitted to every run at once.

As in Chinchilla and Epoch AI's replication (Besiroglu et al. 2024): the law is written
log L = LSE(a - α log N, b - β log D, e) with a = log A, b = log B, e = log E, so every parameter is
unconstrained; the objective is the Huber loss (δ = 1e-3) of the log-loss residuals, summed; scipy's L-BFGS
starts from Chinchilla's grid of 4,500 points. Every grid point is scored first and L-BFGS runs from the best
`starts` of them: seconds, where running from all 4,500 takes minutes.

The objective is divided by δ. Summed Huber losses of residuals ~1e-2 are ~1e-3, and L-BFGS-B's stopping test
compares improvements with max(|f|, 1): undivided, it stops early. Epoch AI's notebook shows this: from the grid's
corner (0, 0, -1, 0, 0) it stops at β = 0.31; and bootstrap refits started from the full fit barely move
(intervals ten times too narrow). Divided, the corner reaches the same fit as the grid (β = 0.367 on their data).
Keeping the 5 highest-loss runs instead of leaving them out, as Epoch AI does, gives β = 0.45.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize

HUBER_DELTA = 1e-3
# Chinchilla's grid of starting points (a, b, e, α, β), as Epoch AI's replication runs it.
CHINCHILLA_GRID = (np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5), np.arange(0, 2.5, 0.5),
                   np.arange(0, 2.5, 0.5))
STARTS = 16  # grid points L-BFGS runs from (the best-scoring ones)


@dataclass(frozen=True)
class Law:
    """L(N, D) = E + A/N^α + B/D^β, with training compute C = 6·N·D."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    @classmethod
    def from_log_params(cls, params: np.ndarray) -> Law:
        a, b, e, alpha, beta = (float(x) for x in params)
        return cls(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)

    def log_params(self) -> np.ndarray:
        return np.array([math.log(self.A), math.log(self.B), math.log(self.E), self.alpha, self.beta])

    def loss(self, params: np.ndarray | float, tokens: np.ndarray | float) -> np.ndarray | float:
        return self.E + self.A / np.power(params, self.alpha) + self.B / np.power(tokens, self.beta)

    def optimum(self, flops: np.ndarray | float) -> tuple[np.ndarray | float, np.ndarray | float]:
        """The N and D that minimise L(N, D) under 6·N·D = `flops` (Hoffmann et al., eq. 4); NaN when the law has
        no minimum there (an exponent ≤ 0, as a bootstrap resample of few runs can give)."""
        flops = np.asarray(flops, dtype=float)
        if self.alpha <= 0 or self.beta <= 0:
            return np.full_like(flops, np.nan), np.full_like(flops, np.nan)
        with np.errstate(over="ignore"):
            g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
            params = g * np.power(flops / 6, self.beta / (self.alpha + self.beta))
        return params, flops / (6 * params)

    @property
    def params_exponent(self) -> float:
        """a in N_opt ∝ C^a."""
        return self.beta / (self.alpha + self.beta)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def huber(residuals: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    small = np.abs(residuals) <= delta
    return np.where(small, 0.5 * residuals**2, delta * (np.abs(residuals) - 0.5 * delta))


def objective(params: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
              delta: float = HUBER_DELTA) -> tuple[float, np.ndarray]:
    """The summed Huber loss of log L - LSE(a - α log N, b - β log D, e) over δ, and its gradient (for L-BFGS)."""
    a, b, e, alpha, beta = params
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = terms.max(axis=0)
    exps = np.exp(terms - top)
    total = exps.sum(axis=0)
    residuals = log_loss - (top + np.log(total))  # log L - LSE(terms)
    slope = -np.clip(residuals, -delta, delta)  # d huber / d prediction
    weights = exps * (slope / total)  # softmax(terms) · slope
    gradient = np.array([weights[0].sum(), weights[1].sum(), weights[2].sum(), -(weights[0] @ log_n),
                         -(weights[1] @ log_d)])
    # Divided by δ: a sum of about |residual| (O(1), not O(δ)), so L-BFGS's tolerances mean what they say.
    return float(huber(residuals, delta).sum()) / delta, gradient / delta


def grid_points(grid: tuple[np.ndarray, ...] = CHINCHILLA_GRID) -> np.ndarray:
    return np.array(list(itertools.product(*grid)), dtype=float)


def _lbfgs(start: np.ndarray, data: tuple[np.ndarray, ...], delta: float):
    from threadpoolctl import threadpool_limits  # here: importing it sets KMP_DUPLICATE_LIB_OK in the environment

    # One BLAS thread: L-BFGS-B's tiny products spend longer waking threads than computing (6x slower on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return minimize(objective, start, args=(*data, delta), jac=True, method="L-BFGS-B")


def _converged(x: np.ndarray) -> Law | None:
    """The law an L-BFGS run ended at, or None where it diverged: a parameter not finite, or A, B or E beyond a
    float (a bootstrap resample of a 14-run ladder ran log A off to ~1e3)."""
    if not np.all(np.isfinite(x)):
        return None
    try:
        return Law.from_log_params(x)
    except OverflowError:
        return None


def fit_law(params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, grid: tuple[np.ndarray, ...] = CHINCHILLA_GRID,
            starts: int = STARTS, delta: float = HUBER_DELTA) -> tuple[Law, float]:
    """The law with the lowest objective from L-BFGS runs started at the `starts` best grid points, and that
    objective's value."""
    data = (np.log(params), np.log(tokens), np.log(loss))
    points = grid_points(grid)
    scores = np.array([objective(point, *data, delta)[0] for point in points])
    best = None
    for point in points[np.argsort(scores, kind="stable")[:starts]]:
        result = _lbfgs(point, data, delta)
        if _converged(result.x) and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        raise ValueError("the fit diverged from every starting point")
    return _converged(best.x), float(best.fun)


def bootstrap(params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, law: Law, samples: int, seed: int = 0,
              delta: float = HUBER_DELTA, progress: Callable[[int], None] | None = None) -> list[Law]:
    """The law refitted on `samples` resamples (with replacement) of the runs, each from the full fit, as Epoch
    AI's replication does; `progress(i)` after each."""
    rng = np.random.default_rng(seed)
    data = (np.log(params), np.log(tokens), np.log(loss))
    start = law.log_params()
    laws = []
    for i in range(samples):
        rows = rng.integers(0, len(params), len(params))
        if fit := _converged(_lbfgs(start, tuple(x[rows] for x in data), delta).x):
            laws.append(fit)
        if progress:
            progress(i + 1)
    return laws


def interval(values: np.ndarray | list[float], confidence: float) -> tuple[float, float]:
    """The central `confidence` percentile interval of bootstrap values (NaNs, resamples without a value, left out)."""
    tail = 50 * (1 - confidence)
    low, high = np.nanpercentile(np.asarray(values, dtype=float), [tail, 100 - tail])
    return float(low), float(high)
