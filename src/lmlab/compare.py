"""`lmlab-compare`: one table of a sweep's runs from their run directories, no server needed.

Reads what every run writes (config.yaml, overrides.yaml, metrics.csv, summary.json, error.txt), so it
works on a sweep that is still running or partly failed. Imports neither torch nor Lightning: it is fast.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import yaml

from lmlab.config_keys import is_untrained
from lmlab.runs.status import ERROR_FILE, run_status, trial_pruned

SOURCES = ("csv", "wandb", "mlflow", "tensorboard")  # where a run's metrics are read (lmlab.tracking.stores)
RUN_FILES = ("config.yaml", "overrides.yaml", "run.json", "metrics.csv", "summary.json", "error.txt")
# What a run was trained and evaluated on: runs that differ here have losses on different tokens.
DATA_KEYS = ("data.source", "data.tokenizer", "data.vocab_size", "data.max_documents")
# How a metric's name says which way is better, when it is not the runs' monitored metric (whose mode they record)
# ("acc": accuracy and lm-eval's acc, acc_norm; "bpb": bits per byte)
HIGHER_IS_BETTER = ("acc", "exact_match", "f1", "mcc", "precision", "recall", "auc", "tokens_per_sec", "mfu", "bleu",
                    "rouge")
LOWER_IS_BETTER = ("loss", "ppl", "perplexity", "bpb", "error", "time")


@dataclass
class Run:
    """What one run directory says about the run."""

    path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    monitor: str = "val/loss"
    mode: str = "min"
    metrics: list[dict[str, str]] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    error: str | None = None
    pruned: dict | None = None  # an Optuna trial stopped early by its pruner
    data: dict[str, str] = field(default_factory=dict)  # DATA_KEYS as config.yaml resolves them
    label: str = ""  # the row's name: the job, or `<sweep>/<job>` when the runs come from several sweeps
    config: dict = field(default_factory=dict)  # config.yaml, resolved: the values of keys a run left at default

    @property
    def status(self) -> str:
        """What happened to the run, as its files and its lock's holder say (`lmlab.runs.status`)."""
        return "failed" if self.error else run_status(self.path, self.steps())

    def value(self, key: str) -> str:
        """The run's value of a key: as overridden, else as its config.yaml resolved it (a group: its name).
        Booleans read true/false, however they were written (YAML's true, a swept override's False)."""
        node: object = self.overrides.get(key)
        if node is None:
            node = self.config
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node = node.get("name")
        if isinstance(node, bool) or node in ("True", "False"):
            return str(node).lower()
        return "—" if node is None else short_number(str(node))

    def number(self, key: str) -> float | None:
        """The run's value of a key as a number, or None (unset, or not a number)."""
        try:
            return float(self.value(key))
        except ValueError:
            return None

    def series(self, key: str) -> list[tuple[int, float]]:
        """(step, value) for each row of metrics.csv that has `key`."""
        return [(int(row["step"]), float(row[key])) for row in self.metrics if row.get(key) not in (None, "")]

    def best(self, key: str, mode: str) -> float | None:
        values = [v for _, v in self.series(key)]
        return (min if mode == "min" else max)(values) if values else None

    def final(self, key: str) -> float | None:
        values = self.series(key)
        return values[-1][1] if values else None

    def steps(self) -> int | None:
        if "global_step" in self.summary:
            return self.summary["global_step"]
        steps = [int(row["step"]) for row in self.metrics if row.get("step")]
        return max(steps) if steps else None  # a row's step counts the optimizer steps done (tracking/loggers.py)

    def tokens_per_sec(self) -> float | None:
        """The run's own figure (summary.json: tokens seen over training wall time); while it runs, the mean
        of what SpeedMonitor logged."""
        if self.summary.get("tokens_per_sec") is not None:
            return self.summary["tokens_per_sec"]
        values = [v for _, v in self.series("train/tokens_per_sec")]
        return sum(values) / len(values) if values else None


def short_number(text: str) -> str:
    """A number in 4 significant digits (an Optuna trial's 0.00019182157424526137 → 0.0001918); other text as is."""
    try:
        value = float(text)
    except ValueError:
        return text
    return text if text.lstrip("-").isdigit() or len(text) <= 6 else f"{value:.4g}"


def is_run_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2: lmlab's contract for bad input."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def unlogged(metrics: list[str], runs: list[Run]) -> list[str]:
    """The metrics that no run logged (in metrics.csv or summary.json)."""
    logged = {key for run in runs for row in run.metrics for key, value in row.items() if value not in (None, "")}
    logged |= {key for run in runs for key in run.summary}
    return [m for m in metrics if m not in logged]


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories: each path itself, or its subdirectories (a sweep's numbered jobs, in job order)."""
    runs = []
    for path in paths:
        if not path.exists():
            fail(f"{path} does not exist")
        if not path.is_dir():
            fail(f"{path} is not a directory")
        if is_run_dir(path):
            runs.append(path)
            continue
        children = [p for p in path.iterdir() if p.is_dir() and (p.name.isdigit() or is_run_dir(p))]
        runs.extend(sorted(children, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0,
                                                    p.name)))
    return runs


def label_runs(runs: list[Run]) -> None:
    """Name each row by its job; by `<sweep>/<job>` when the runs come from more than one directory."""
    several = len({run.path.parent for run in runs}) > 1
    for run in runs:
        run.label = f"{run.path.parent.name}/{run.path.name}" if several else run.path.name


def data_differences(runs: list[Run]) -> list[str]:
    """`key: value, value` for each of DATA_KEYS on which the runs disagree (losses then count other tokens)."""
    known = [run for run in runs if run.data]
    return [f"{key}: {', '.join(sorted({run.data[key] for run in known}))}" for key in DATA_KEYS
            if len({run.data[key] for run in known}) > 1]


def parse_overrides(items: list[str]) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in items if "=" in item)
    return {key.lstrip("+~"): value for key, value in pairs}


def tracker_metrics(run: Run, source: str) -> list[dict[str, str]]:
    """The run's rows as a tracker's own store holds them (`lmlab.tracking.stores`)."""
    from lmlab.tracking import stores as tracker_stores

    if source == "wandb":
        points = tracker_stores.wandb_points(run.path)
    elif source == "tensorboard":
        points = tracker_stores.tensorboard_points(run.path)
    else:
        uri = ((run.config.get("logger") or {}).get("mlflow") or {}).get("tracking_uri")
        if not uri:
            fail(f"{run.path}: its config.yaml names no logger.mlflow.tracking_uri (it was not run with logger=mlflow)")
        points = tracker_stores.mlflow_points(run.path, uri)
    return tracker_stores.as_rows(points)


def load_run(path: Path, source: str = "csv") -> Run:
    run = Run(path)
    if (path / "overrides.yaml").is_file():
        run.overrides = parse_overrides(yaml.safe_load((path / "overrides.yaml").read_text()) or [])
    if (path / "config.yaml").is_file():
        config = run.config = yaml.safe_load((path / "config.yaml").read_text()) or {}
        monitor = config.get("monitor") or {}
        run.monitor, run.mode = monitor.get("metric", run.monitor), monitor.get("mode", run.mode)
        data = config.get("data") or {}
        run.data = {key: json.dumps(data.get(key.split(".", 1)[1]), sort_keys=True) for key in DATA_KEYS}
    if source != "csv":
        run.metrics = tracker_metrics(run, source)
    elif (path / "metrics.csv").is_file():
        with open(path / "metrics.csv", newline="") as f:
            run.metrics = list(csv.DictReader(f))
    if (path / "summary.json").is_file():
        run.summary = json.loads((path / "summary.json").read_text())
    run.pruned = trial_pruned(path)
    if (path / ERROR_FILE).is_file():
        lines = (path / ERROR_FILE).read_text().splitlines()
        run.error = lines[0] if lines else "failed"
        if not run.overrides and len(lines) > 1 and lines[1].startswith("overrides: "):
            run.overrides = parse_overrides(lines[1].removeprefix("overrides: ").split())
    return run


def varying_keys(runs: list[Run]) -> tuple[list[str], dict[str, str]]:
    """Override keys whose value differs between runs (the columns), and those all runs share."""
    known = [run for run in runs if run.overrides]  # a job that has written nothing yet says nothing
    keys = sorted({k for run in known for k in run.overrides if not is_untrained(k)})
    values = {k: {run.overrides.get(k, "") for run in known} for k in keys}
    varying = [k for k in keys if len(values[k]) > 1 or len(known) == 1]
    common = {k: next(iter(values[k])) for k in keys if k not in varying}
    return varying, common


def _fmt(value: float | int | None) -> str:
    """One format for every number: 4 significant digits, and from 1,000 on whole numbers with separators."""
    if value is None:
        return "—"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def metric_mode(metric: str, runs: list[Run]) -> str:
    """"max" or "min": the mode the runs record for their monitored metric, else what the metric's name says."""
    for run in runs:
        if run.monitor == metric:
            return run.mode
    name = metric.rsplit("/", 1)[-1].lower()
    if any(word in name for word in LOWER_IS_BETTER):
        return "min"
    return "max" if any(word in name for word in HIGHER_IS_BETTER) else "min"


def table_rows(runs: list[Run], metrics: str | list[str], reverse: bool = False,
               modes: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows, one per run, with the final and best value of each metric, sorted by the best value
    of the first (best first by its mode; runs without it last). `modes` overrides a metric's mode."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    modes = {m: (modes or {}).get(m) or metric_mode(m, runs) for m in metrics}
    keys, _ = varying_keys(runs)
    sort_metric = metrics[0]

    def sort_key(run: Run) -> tuple[bool, float]:
        best = run.best(sort_metric, modes[sort_metric])
        if best is None:
            return (True, 0.0)
        return (False, -best if (modes[sort_metric] == "max") != reverse else best)

    header = ["run", *keys]
    for metric in metrics:
        header += [f"final {metric}", f"best {metric}"]
    header += ["steps", "tokens/s", "wall time (s)", "status"]
    rows = []
    for run in sorted(runs, key=sort_key):
        status = f"failed: {run.error}" if run.error else run.status
        values = [_fmt(v) for m in metrics for v in (run.final(m), run.best(m, modes[m]))]
        rows.append([run.label or run.path.name, *(run.value(k) for k in keys), *values,
                     _fmt(run.steps()), _fmt(run.tokens_per_sec()), _fmt(run.summary.get("wall_time_s")), status])
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def write_markdown(path: Path, header: list[str], rows: list[list[str]]) -> None:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class PlotLayout:
    """What `plot_curves` drew: for a caller, and for the tests that check the figure stays readable."""

    curves: int
    labels: list[str]
    size: tuple[int, int]  # pixels, as saved
    legend_width: float  # the widest panel legend's share of the figure's width


LEGEND_SHARE = 0.3  # of the figure's width, at most: the curves keep the rest
LABEL_CHARS = 28  # a legend label is wrapped to lines of this length


def legend_labels(runs: list[Run]) -> list[str]:
    """One short label per run: its name and the keys whose values differ between these runs, each key by its
    last part unless two keys share it (`lr=0.0001918 weight_decay=0.1244`), wrapped to LABEL_CHARS."""
    import textwrap

    keys, _ = varying_keys(runs)
    keys = [k for k in keys if len({run.value(k) for run in runs}) > 1]
    last = [k.rsplit(".", 1)[-1] for k in keys]
    names = [short if last.count(short) == 1 else k for k, short in zip(keys, last, strict=True)]
    labels = []
    for run in runs:
        text = " ".join(f"{name}={run.value(k)}" for name, k in zip(names, keys, strict=True))
        labels.append("\n".join(textwrap.wrap(f"#{run.label or run.path.name} {text}".strip(), LABEL_CHARS,
                                               break_on_hyphens=False)))
    return labels


def plot_curves(path: Path, runs: list[Run], metrics: str | list[str]) -> PlotLayout:
    """A PNG with every run's curve of each metric overlaid (one panel per metric) and a legend to the right that
    names only what differs between the plotted runs, in at most LEGEND_SHARE of the width (its font shrinks
    until it fits). Steps count optimizer steps done, as the table's `steps`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    plotted = [run for run in runs if any(run.series(m) for m in metrics)]
    labels = dict(zip(map(id, plotted), legend_labels(plotted), strict=True))
    fig, axes = plt.subplots(len(metrics), 1, figsize=(12, 4.5 * len(metrics)), squeeze=False, sharex=True)
    fig.subplots_adjust(left=0.07, right=1 - LEGEND_SHARE - 0.04, top=0.93, bottom=0.1)
    curves, legend_width = 0, 0.0
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        drawn = 0
        for run in plotted:
            if series := run.series(metric):
                steps, values = zip(*series, strict=True)
                ax.plot(steps, values, marker="o", markersize=3, label=labels[id(run)])
                drawn += 1
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} of {drawn} runs")
        curves += drawn
        if drawn:
            legend_width = max(legend_width, _fit_legend(fig, ax))
    axes[-1, 0].set_xlabel("step")
    fig.savefig(path, dpi=100)  # the size asked for: the legend fits inside it
    size = fig.canvas.get_width_height()
    plt.close(fig)
    return PlotLayout(curves, list(labels.values()), size, legend_width)


def _fit_legend(fig, ax) -> float:
    """Place the panel's legend right of it, in the largest font (and fewest columns) that keeps it within
    LEGEND_SHARE of the figure's width and inside the figure; returns its share of the width."""
    renderer = fig.canvas.get_renderer()
    for size in (9, 8, 7, 6, 5):
        for ncol in (1, 2, 3):
            legend = ax.legend(fontsize=size, ncol=ncol, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                               borderaxespad=0.0, labelspacing=0.4, handlelength=1.2, columnspacing=0.8)
            box = legend.get_window_extent(renderer)
            share = box.width / fig.bbox.width
            if share <= LEGEND_SHARE and box.y0 >= 0:
                return share
    return share


@dataclass
class SweepPlot:
    """What `plot_against` drew: per (panel, curve) value, the (x, metric) points sorted by x and the best one."""

    points: dict[tuple[str, str], list[tuple[float, float]]]
    best: dict[tuple[str, str], tuple[float, float]]
    log_x: bool


def _value_order(text: str) -> tuple[bool, float, str]:
    """Sorts values as numbers where they are, and after them the rest alphabetically."""
    try:
        return (False, float(text), text)
    except ValueError:
        return (True, 0.0, text)


def plot_against(path: Path, runs: list[Run], metric: str, x: str, curve: str | None = None,
                 panel: str | None = None, mode: str = "min") -> SweepPlot:
    """A PNG of each run's final `metric` against its value of the key `x` (e.g. optimizer.lr), one curve per
    value of `curve` (e.g. model.config.n_embd), one panel per value of `panel` (sharing the y axis), each curve's
    best point starred. The x axis is logarithmic when every x is positive and they span a factor of 10 or more
    (a learning-rate grid). Runs without a number for `x` or a finite `metric` are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in runs:
        at, value = run.number(x), run.final(metric)
        if at is not None and value is not None and math.isfinite(value):
            group = (run.value(panel) if panel else "", run.value(curve) if curve else "")
            points.setdefault(group, []).append((at, value))
    order = sorted(points, key=lambda group: (_value_order(group[0]), _value_order(group[1])))
    points = {group: sorted(points[group]) for group in order}
    pick = min if mode == "min" else max
    best = {group: pick(series, key=lambda p: p[1]) for group, series in points.items()}
    xs = [at for series in points.values() for at, _ in series]
    log_x = bool(xs) and min(xs) > 0 and max(xs) >= 10 * min(xs)

    panels = list(dict.fromkeys(p for p, _ in points)) or [""]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], panels, strict=True):
        for i, value in enumerate(c for p, c in points if p == name):
            series = points[(name, value)]
            color = f"C{i % 10}"
            ax.plot(*zip(*series, strict=True), marker="o", markersize=4, color=color,
                    label=f"{curve.rsplit('.', 1)[-1]}={value}" if curve else None)
            ax.plot(*best[(name, value)], marker="*", markersize=14, color=color, linestyle="none")
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_title(f"{panel}={name}" if panel else f"final {metric}")
        if curve:
            ax.legend(fontsize=8, title="★ best", title_fontsize=8)
    axes[0, 0].set_ylabel(f"final {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return SweepPlot(points, best, log_x)


def print_table(header: list[str], rows: list[list[str]], common: dict[str, str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=" ".join(f"{k}={short_number(v)}" for k, v in common.items()) or None)
    for name in header:
        table.add_column(name, justify="right" if name not in ("run", "status") else "left")
    failures = []
    for row in rows:
        failed = row[-1].startswith("failed")
        table.add_row(*row[:-1], "failed" if failed else row[-1], style="red" if failed else None)
        if failed:
            failures.append(f"{row[0]}: {row[-1]}")
    console = Console()
    if not console.is_terminal:  # a file or pipe: the whole table, not cut to 80 columns
        console = Console(width=100_000)
    console.print(table)
    for failure in failures:
        console.print(failure, style="red", markup=False, highlight=False)


@dataclass
class CompareArgs:
    """What `lmlab-compare` was asked: one field per `key=value` (the directories also by position)."""

    paths: list[Path] = field(default_factory=list, metadata={"help": "sweep or run directories"})
    metric: list[str] = field(default_factory=list,
                              metadata={"help": "a metric to show (repeat for several; default: the monitored one)"})
    sort: str | None = field(default=None, metadata={"help": "metric to sort by, best first (default: the first)"})
    mode: str | None = field(default=None, metadata={
        "help": "min or max: which is better for sort (default: the runs' monitor.mode, else from the name)"})
    reverse: bool = field(default=False, metadata={"help": "sort the other way round"})
    source: str = field(default="csv", metadata={
        "help": "csv (metrics.csv), or wandb, mlflow, tensorboard: what that tracker's own store holds"})
    out: Path | None = field(default=None, metadata={"help": "where compare.csv/.md/.png go (default: the "
                                                             "directory given, or the current one)"})
    x: str | None = field(default=None, metadata={
        "help": "a swept key (e.g. optimizer.lr): also draw compare_<x>.png, the final metric against it"})
    curve: str | None = field(default=None, metadata={
        "help": "with x: one curve per value of this key (e.g. model.config.n_embd)"})
    panel: str | None = field(default=None, metadata={
        "help": "with x: one panel per value of this key (e.g. model.mup, for two sweeps side by side)"})


def parse_args(argv: list[str]) -> CompareArgs:
    from lmlab.errors import LmlabError
    from lmlab.utils.key_values import parse_key_values

    about = ("Compare runs from their directories: a table (also CSV and Markdown) and a PNG of the validation "
             "curves. Give a sweep directory (outputs/<experiment>/multirun/<sweep>) or run directories.")
    try:
        args = parse_key_values(argv, CompareArgs, ("paths",), "lmlab-compare", about)
    except LmlabError as e:
        fail(str(e))
    if not args.paths:
        fail("give a sweep or run directory (lmlab-compare outputs/clm/multirun/<sweep>; see --help)")
    if args.mode not in (None, "min", "max"):
        fail(f"mode={args.mode!r} must be min or max")
    if args.source not in SOURCES:
        fail(f"source={args.source!r} must be one of {', '.join(SOURCES)}")
    if (args.curve or args.panel) and not args.x:
        fail("curve= and panel= draw against a key: give x= too (e.g. x=optimizer.lr curve=model.config.n_embd)")
    args.paths = [Path(p) for p in args.paths]
    return args


def main(argv: list[str] | None = None) -> None:
    from lmlab.errors import LmlabError

    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        runs = [load_run(path, args.source) for path in find_runs(args.paths)]
    except LmlabError as e:
        fail(str(e))
    if not runs:
        fail(f"no run directories in {' '.join(map(str, args.paths))} (a run holds config.yaml or metrics.csv)")
    label_runs(runs)
    metrics = list(args.metric) or [args.sort or runs[0].monitor]
    sort = args.sort or metrics[0]
    metrics = [sort, *(m for m in metrics if m != sort)]
    if missing := unlogged([m for m in metrics if m in (args.metric or []) + [args.sort]], runs):
        fail(f"metric=/sort= {', '.join(missing)}: logged by none of the {len(runs)} runs")
    out = args.out or (args.paths[0] if len(args.paths) == 1 and not is_run_dir(args.paths[0]) else Path.cwd())
    out.mkdir(parents=True, exist_ok=True)

    modes = {sort: args.mode or metric_mode(sort, runs)}
    header, rows = table_rows(runs, metrics, args.reverse, modes)
    _, common = varying_keys(runs)
    best = "highest" if (modes[sort] == "max") != args.reverse else "lowest"
    print_table(header, rows, common, title=f"{len(runs)} runs, sorted by best {sort} ({best} first)")
    if differences := data_differences(runs):
        print(f"warning: the runs were trained on different data or tokenizers ({'; '.join(differences)}): "
              "their losses count different tokens and do not compare", file=sys.stderr)
    write_csv(out / "compare.csv", header, rows)
    write_markdown(out / "compare.md", header, rows)
    curves = plot_curves(out / "compare.png", runs, metrics).curves
    print(f"Wrote {out / 'compare.csv'}, {out / 'compare.md'} and {out / 'compare.png'} ({curves} curves)")
    if args.x:
        plot_sweep(out / f"compare_{args.x}.png", runs, sort, modes[sort], args)


def plot_sweep(path: Path, runs: list[Run], metric: str, mode: str, args: CompareArgs) -> None:
    """compare_<x>.png, and each curve's best x printed."""
    if not any(run.number(args.x) is not None for run in runs):
        fail(f"x={args.x}: no run has a number for it (a key its sweep varies, e.g. optimizer.lr)")
    drawn = plot_against(path, runs, metric, args.x, args.curve, args.panel, mode)
    print(f"best final {metric} against {args.x}:")
    for (panel, curve), (at, value) in drawn.best.items():
        where = " ".join(f"{key}={name}" for key, name in ((args.panel, panel), (args.curve, curve)) if key)
        print(f"  {where or 'all runs'}: {_fmt(value)} at {args.x}={short_number(repr(at))}")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
