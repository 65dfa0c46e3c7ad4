"""`lmlab-scaling`: scaling laws fitted to a sweep's runs (or a CSV), and what to train at a compute budget.

Approach 3 (L(N, D) = E + A/N^α + B/D^β with bootstrap intervals) and, where the runs form IsoFLOP groups,
Approach 2 (N_opt ∝ C^a, D_opt ∝ C^b); writes scaling.json and scaling.png. Imports neither torch nor Lightning.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from lmlab.compare import fail, is_run_dir
from lmlab.errors import one_line_error
from lmlab.scaling.backtest import hold_out_largest
from lmlab.scaling.isoflop import IsoFlopFit, fit_isoflops
from lmlab.scaling.ladder import nearest_model, train_overrides
from lmlab.scaling.law import STARTS, Law, bootstrap, fit_law, interval
from lmlab.scaling.params import COUNTS
from lmlab.scaling.points import Point, columns, ladder_count, read_points

FIELDS = ("E", "A", "B", "alpha", "beta")
MIN_POINTS = 6  # the law has 5 parameters


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lmlab-scaling",
        description="Fit L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Approach 3) and IsoFLOP "
                    "parabolas (Approach 2) to runs, and propose the compute-optimal model for a budget. "
                    "C = 6ND throughout. docs/scaling.md")
    parser.error = one_line_error(parser.prog)  # type: ignore[method-assign]
    parser.add_argument("paths", nargs="+", type=Path,
                        help="sweep or run directories, or one CSV with columns params,tokens,loss "
                             "(or params,flops,loss)")
    parser.add_argument("--params", choices=COUNTS, default=None,
                        help="N of a run directory: non-embedding (Kaplan et al.) or total parameters (Hoffmann et "
                             "al.); default: what the runs' scaling.params says (the IsoFLOP preset's), else "
                             "non-embedding. A CSV's params column is taken as it is")
    parser.add_argument("--metric", default="val/loss", help="the runs' final value of this metric is L")
    parser.add_argument("--budget", type=float, default=None,
                        help="training FLOPs to plan for: compute-optimal N and D, predicted loss, "
                             "lmlab-train overrides")
    parser.add_argument("--backtest", action="store_true",
                        help="also fit on every budget but the largest and compare the law's loss there with the "
                             "best the runs reached: does the law extrapolate?")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals (0: none)")
    parser.add_argument("--confidence", type=float, default=0.95, help="of the intervals")
    parser.add_argument("--exclude-highest", type=int, default=0, metavar="K",
                        help="leave out the K runs of highest loss (Epoch AI leaves out 5 of Chinchilla's)")
    parser.add_argument("--starts", type=int, default=STARTS,
                        help="L-BFGS runs, from the best-scoring points of Chinchilla's grid of 4,500")
    parser.add_argument("--seed", type=int, default=0, help="of the bootstrap's resamples")
    parser.add_argument("--out", type=Path, default=None,
                        help="where scaling.json and scaling.png go (default: the sweep directory given, else here)")
    args = parser.parse_args(argv)
    for name, ok, expected in (("--budget", args.budget is None or args.budget > 0, "a positive number of FLOPs"),
                               ("--bootstrap", args.bootstrap >= 0, "a non-negative number of resamples"),
                               ("--confidence", 0 < args.confidence < 1, "between 0 and 1 (e.g. 0.95)"),
                               ("--exclude-highest", args.exclude_highest >= 0, "a non-negative number of runs"),
                               ("--starts", args.starts >= 1, "a positive number")):
        if not ok:
            fail(f"{name}={getattr(args, name[2:].replace('-', '_'))}: expected {expected}")
    return args


def show_progress(total: int):
    """A callback for the bootstrap: a bar on a terminal, else a line at each tenth."""
    if sys.stderr.isatty():
        from rich.progress import Progress

        progress = Progress(transient=True)
        task = progress.add_task("bootstrap", total=total)
        progress.start()

        def advance(done: int) -> None:
            progress.update(task, completed=done)
            if done == total:
                progress.stop()
        return advance
    step = max(1, total // 10)
    return lambda done: print(f"bootstrap {done}/{total}", file=sys.stderr) if done % step == 0 else None


def plan_budget(flops: float, law: Law, laws: list[Law], isoflops: IsoFlopFit | None, points: list[Point],
                confidence: float) -> dict:
    """Compute-optimal N and D at `flops`, the loss the law predicts there, intervals over the bootstrap's laws
    (each at its own optimum), and the lmlab-train overrides for the ladder's nearest model."""
    params, tokens = (float(x) for x in law.optimum(flops))
    plan = {"flops": flops, "params": params, "tokens": tokens, "loss": float(law.loss(params, tokens))}
    if laws:
        optima = [b.optimum(flops) for b in laws]
        plan["params_interval"] = interval([n for n, _ in optima], confidence)
        plan["tokens_interval"] = interval([d for _, d in optima], confidence)
        plan["loss_interval"] = interval([b.loss(n, d) for b, (n, d) in zip(laws, optima, strict=True)], confidence)
    if isoflops:
        n2, d2 = isoflops.optimum(flops)
        plan["approach2"] = {"params": n2, "tokens": d2}
    if run := nearest_model(points, params):
        overrides = train_overrides(run, flops, params)
        plan["nearest_run"] = {"name": run.name, "params": run.params,
                               "width_from_ratio": run.tokens_per_param is not None}
        plan["overrides"] = overrides
        plan["command"] = shlex.join(["lmlab-train", *overrides])
    return plan


def _between(low_high: tuple[float, float] | list[float] | None) -> str:
    return f" [{low_high[0]:.4g}, {low_high[1]:.4g}]" if low_high else ""


def report(result: dict) -> None:
    fit = result["approach3"]
    ci = fit.get("intervals", {})
    count = "the CSV's params" if result["params"] == "as given" else f"{result['params'].replace('_', ' ')} parameters"
    print(f"{result['points']} runs, N = {count}, C = 6ND")
    print(f"Approach 3: L(N, D) = E + A/N^alpha + B/D^beta  ({result['confidence']:.0%} intervals over "
          f"{fit['bootstrap']} bootstrap resamples)")
    for name in FIELDS:
        print(f"  {name:>5} = {fit[name]:.4g}{_between(ci.get(name))}")
    print(f"  N_opt ∝ C^{fit['a']:.3f}, D_opt ∝ C^{fit['b']:.3f}")
    if iso := result.get("approach2"):
        print(f"Approach 2 ({len(iso['budgets'])} IsoFLOP budgets): N_opt ∝ C^{iso['a']:.3f}, D_opt ∝ C^{iso['b']:.3f}")
    else:
        print("Approach 2: no IsoFLOP fit (needs 2 budgets with 3 model sizes each and a minimum between them)")
    if plan := result.get("budget"):
        print(f"At C = {plan['flops']:.3g} FLOPs: N = {plan['params']:.4g}{_between(plan.get('params_interval'))}, "
              f"D = {plan['tokens']:.4g}{_between(plan.get('tokens_interval'))} tokens, predicted "
              f"{result['metric']} {plan['loss']:.4g}{_between(plan.get('loss_interval'))}")
        if "approach2" in plan:
            print(f"  Approach 2: N = {plan['approach2']['params']:.4g}, D = {plan['approach2']['tokens']:.4g}")
        if "command" in plan:
            run = plan["nearest_run"]
            if run["width_from_ratio"]:  # the preset picks the width nearest N for the ratio D/N
                print(f"  the ladder's command line (run {run['name']}) at the compute-optimal tokens per parameter:"
                      f"\n  {plan['command']}")
            else:
                print(f"  nearest model of the ladder: run {run['name']} (N = {run['params']:.4g}):\n"
                      f"  {plan['command']}")
        else:
            print("  (no ladder: give run directories for the lmlab-train overrides of the nearest model)")
    if test := result.get("backtest"):
        inside = {True: ", inside the interval", False: ", outside the interval", None: ""}[test["covered"]]
        print(f"Backtest: fitted on the {test['fitted_runs']} runs below {test['budget']:.3g} FLOPs, the law predicts "
              f"{result['metric']} {test['predicted']:.4g}{_between(test['interval'])} there; the best run reached "
              f"{test['measured']:.4g} ({test['measured_run']}): {test['error']:+.1%}{inside}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for path in args.paths:
        if not path.exists():
            fail(f"{path} does not exist")
    try:
        if args.params is None:
            args.params = "non_embedding" if any(p.is_file() for p in args.paths) else ladder_count(args.paths)
        points, skipped = read_points(args.paths, args.params, args.metric)
    except (ValueError, OSError) as e:
        fail(str(e))
    for reason in skipped:
        print(f"left out: {reason}", file=sys.stderr)
    if args.exclude_highest:
        points = sorted(points, key=lambda p: p.loss)[:max(0, len(points) - args.exclude_highest)]
    if len(points) < MIN_POINTS:
        fail(f"{len(points)} usable runs in {' '.join(map(str, args.paths))}: a fit of 5 parameters needs at least "
             f"{MIN_POINTS} (finished runs with summary.json and {args.metric})")
    backtest = None
    if args.backtest:  # before the fit and its bootstrap: a ladder of one budget is refused at once
        try:
            backtest = hold_out_largest(points, MIN_POINTS, args.starts, args.bootstrap, args.seed, args.confidence,
                                        show_progress(args.bootstrap) if args.bootstrap else None)
        except ValueError as e:
            fail(str(e))
    params, tokens, loss = columns(points, "params", "tokens", "loss")
    flops = params * tokens * 6
    law, objective = fit_law(params, tokens, loss, starts=args.starts)
    laws = bootstrap(params, tokens, loss, law, args.bootstrap, args.seed,
                     progress=show_progress(args.bootstrap) if args.bootstrap else None)
    approach3 = {**law.to_dict(), "objective": objective, "a": law.params_exponent, "b": 1 - law.params_exponent,
                 "bootstrap": len(laws)}
    if laws:
        approach3["intervals"] = {k: interval([getattr(b, k) for b in laws], args.confidence) for k in FIELDS}
    isoflops = fit_isoflops(params, flops, loss, [p.budget for p in points])
    count = "as given" if args.paths[0].is_file() else args.params  # a CSV's params column is taken as it is
    result = {"points": len(points), "params": count, "metric": "loss" if count == "as given" else args.metric,
              "confidence": args.confidence,
              "excluded_highest": args.exclude_highest, "left_out": skipped, "approach3": approach3,
              "approach2": isoflops.to_dict() if isoflops else None,
              "runs": [{"name": p.name, "params": p.params, "tokens": p.tokens, "flops": p.flops, "loss": p.loss,
                        "budget": p.budget} for p in points]}
    if backtest:
        result["backtest"] = backtest.to_dict()
    if args.budget:
        result["budget"] = plan_budget(args.budget, law, laws, isoflops, points, args.confidence)
    report(result)

    single_sweep = len(args.paths) == 1 and args.paths[0].is_dir() and not is_run_dir(args.paths[0])
    out = args.out or (args.paths[0] if single_sweep else Path.cwd())
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    from lmlab.scaling.plot import plot_fit

    plan = result.get("budget")
    mark = (plan["flops"], plan["loss"], *plan.get("loss_interval", (plan["loss"], plan["loss"]))) if plan else None
    plot_fit(out / "scaling.png", points, law, isoflops, count, mark)
    written = [out / "scaling.json", out / "scaling.png"]
    if backtest:
        fitted = backtest.fitted
        fitted_isoflops = fit_isoflops(*columns(fitted, "params", "flops", "loss"), [p.budget for p in fitted])
        low, high = backtest.interval or (backtest.predicted, backtest.predicted)
        plot_fit(out / "backtest.png", fitted, backtest.law, fitted_isoflops, count,
                 (backtest.budget, backtest.predicted, low, high), backtest.held_out)
        written.append(out / "backtest.png")
    print(f"Wrote {', '.join(map(str, written[:-1]))} and {written[-1]}")


if __name__ == "__main__":
    main()
