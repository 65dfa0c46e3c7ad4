"""The figure of a fit: loss against training FLOPs with the law's compute-optimal frontier, and the IsoFLOP
curves (each budget's runs, its parabola, the law's prediction at that budget)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmlab.scaling.isoflop import IsoFlopFit, group_budgets
from lmlab.scaling.law import Law
from lmlab.scaling.points import Point


def plot_fit(path: Path, points: list[Point], law: Law, isoflops: IsoFlopFit | None, count: str,
             budget: tuple[float, float, float, float] | None = None, held_out: list[Point] = ()) -> None:
    """`budget`: (FLOPs, predicted loss, interval low, interval high), drawn as a point with an error bar;
    `held_out`: runs the law was not fitted on (a backtest's largest budget), drawn hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    n_label = "N (the CSV's params)" if count == "as given" else f"N ({count.replace('_', ' ')} parameters)"
    params = np.array([p.params for p in points])
    flops = np.array([p.flops for p in points])
    loss = np.array([p.loss for p in points])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))

    dots = left.scatter(flops, loss, c=params, cmap="viridis", norm=LogNorm(), s=18, edgecolors="black",
                        linewidths=0.3)
    fig.colorbar(dots, ax=left, label=n_label)
    if held_out:
        left.scatter([p.flops for p in held_out], [p.loss for p in held_out], facecolors="none", edgecolors="black",
                     s=30, linewidths=0.8, label="held out (not fitted)")
    high = max(flops.max(), budget[0] if budget else 0, *(p.flops for p in held_out)) * 2
    frontier = np.geomspace(flops.min() / 2, high, 100)
    left.plot(frontier, law.loss(*law.optimum(frontier)), color="crimson",
              label=f"compute-optimal: L = {law.E:.3g} + {law.A:.3g}/N^{law.alpha:.3f} + {law.B:.3g}/D^{law.beta:.3f}")
    if budget:
        c, value, low, up = budget
        label = (f"{'predicted at' if held_out else '--budget'} {c:.3g}: {value:.4g}"
                 + (f" [{low:.4g}, {up:.4g}]" if low < up else ""))
        left.errorbar([c], [value], yerr=[[value - low], [up - value]], fmt="*", color="crimson", markersize=12,
                      capsize=4, label=label)
    left.set(xscale="log", yscale="log", xlabel="training FLOPs C = 6ND", ylabel="final validation loss",
             title="Loss against compute (Approach 3)")
    left.xaxis.set_minor_formatter(NullFormatter())  # a ladder spans a decade or two: its minor labels collide
    for formatter in (left.yaxis.set_major_formatter, left.yaxis.set_minor_formatter):
        formatter(ScalarFormatter())  # losses span less than a decade: 2.2, 2.4, ... rather than 2×10^0
    left.legend(fontsize="small", loc="lower left")  # the runs fall from upper left to lower right

    colors = plt.cm.plasma(np.linspace(0, 0.85, max(1, len(isoflops.parabolas) if isoflops else 1)))
    groups = ([(p.flops, np.array(p.params), np.array(p.losses), p) for p in isoflops.parabolas] if isoflops else
              [(c, params[idx], loss[idx], None) for c, idx in group_budgets(flops).items() if len(idx) >= 3][:8])
    for color, (c, n, values, parabola) in zip(colors, groups, strict=False):
        right.scatter(n, values, color=color, s=18, label=f"C = {c:.2g}")
        grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 60)
        right.plot(grid, law.loss(grid, c / (6 * grid)), color=color, linestyle=":", linewidth=1)
        if parabola:
            right.plot(grid, np.polyval(parabola.coefficients, np.log(grid)), color=color)
            right.scatter([parabola.optimal_params], [parabola.min_loss], color=color, marker="x", s=60)
    title = "IsoFLOP curves (Approach 2: parabolas, x their minima; dotted: Approach 3)"
    if isoflops:
        title += f"\nN_opt ∝ C^{isoflops.params_exponent:.3f}, D_opt ∝ C^{isoflops.tokens_exponent:.3f}"
    right.set(xscale="log", xlabel=n_label, ylabel="final validation loss",
              title=title)
    right.title.set_fontsize("small")
    if held_out:
        c = float(np.exp(np.mean(np.log([p.flops for p in held_out]))))
        n = np.array([p.params for p in held_out])
        right.scatter(n, [p.loss for p in held_out], facecolors="none", edgecolors="black", s=30,
                      label=f"C = {c:.2g}, held out")
        grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 60)
        right.plot(grid, law.loss(grid, c / (6 * grid)), color="black", linestyle=":", linewidth=1)
    if groups or held_out:
        right.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
