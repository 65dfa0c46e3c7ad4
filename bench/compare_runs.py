"""Two `lmlab-train` runs of the same data and steps side by side (e.g. bf16 and `model.fp8=true`): median
tokens/s, the ratio, and how far apart their loss curves are, from each run's `metrics.csv`.

    python bench/compare_runs.py RUN_A RUN_B --labels bf16 fp8 --json fp8.json

`within_tolerance`: the mean training loss over the second half of the steps differs by at most `--tolerance`
(relative, default 1%) — early losses differ more and mean less.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path


def series(run_dir: Path, key: str) -> dict[int, float]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return {int(r["step"]): float(r[key]) for r in csv.DictReader(f) if r.get(key)}


def compare(a: Path, b: Path, labels: tuple[str, str], tolerance: float) -> dict:
    speed = {label: statistics.median(list(series(run, "train/tokens_per_sec").values())[1:] or [float("nan")])
             for label, run in zip(labels, (a, b), strict=True)}
    loss_a, loss_b = series(a, "train/loss"), series(b, "train/loss")
    steps = sorted(loss_a.keys() & loss_b.keys())
    late = steps[len(steps) // 2:]
    late_a, late_b = (statistics.fmean(loss[s] for s in late) if late else float("nan") for loss in (loss_a, loss_b))
    difference = abs(late_b - late_a) / late_a if late else float("nan")
    return {"tokens_per_sec": speed, "speedup": speed[labels[1]] / speed[labels[0]],
            "steps_compared": len(steps), "late_mean_loss": {labels[0]: late_a, labels[1]: late_b},
            "late_loss_relative_difference": difference, "max_abs_loss_difference":
                max((abs(loss_a[s] - loss_b[s]) for s in steps), default=float("nan")),
            "tolerance": tolerance, "within_tolerance": difference <= tolerance}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs=2, type=Path)
    parser.add_argument("--labels", nargs=2, default=["a", "b"])
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--json", help="also write the comparison here")
    args = parser.parse_args()
    result = compare(*args.runs, tuple(args.labels), args.tolerance)
    a, b = args.labels
    print(f"{b} vs {a}: {result['speedup']:.3f}x tokens/s ({result['tokens_per_sec'][b]:,.0f} vs "
          f"{result['tokens_per_sec'][a]:,.0f}); loss over the last half of {result['steps_compared']} logged steps "
          f"{result['late_loss_relative_difference']:.2%} apart (tolerance {args.tolerance:.0%}: "
          f"{'within' if result['within_tolerance'] else 'OUTSIDE'})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
