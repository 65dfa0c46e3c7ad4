"""Draw docs/compare_20_trials.png: `lmlab-compare`'s curves of a made-up 20-trial Optuna search.

    python scripts/compare_example.py docs/compare_20_trials.png
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

from lmlab.compare import find_runs, label_runs, load_run, plot_curves


def main(out: Path) -> None:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "search"
        for i in range(20):
            run = sweep / str(i)
            run.mkdir(parents=True)
            lr, wd = 10 ** rng.uniform(-4, -2), rng.uniform(0, 0.3)
            (run / "overrides.yaml").write_text(f"- optimizer.lr={lr!r}\n- optimizer.weight_decay={wd!r}\n"
                                                f"- scheduler.num_warmup_steps={rng.choice([5, 10, 20])}\n")
            (run / "config.yaml").write_text("monitor:\n  metric: val/loss\n  mode: min\n")
            floor = 3.2 + abs(lr - 2e-3) * 150 + wd
            rows = [f"{step},{floor + 3 * 0.8 ** (step / 10) + rng.gauss(0, 0.03):.4f}" for step in range(25, 401, 25)]
            (run / "metrics.csv").write_text("step,val/loss\n" + "\n".join(rows) + "\n")
        runs = [load_run(path) for path in find_runs([sweep])]
        label_runs(runs)
        layout = plot_curves(out, runs, "val/loss")
    print(f"{out}: {layout.size[0]}x{layout.size[1]} px, legend {layout.legend_width:.0%} of the width")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
