"""Muon against AdamW at equal steps: a tiny GPT-2 on the embedded corpus (data=stdlib), each optimizer at the best
learning rate of one grid a factor 2 apart (optimizer=muon's match_rms_adamw scale lets them share the grid); prints
every run's final val/loss, each optimizer's best and the ratio of the two (docs/scaling.md, "Muon").

    python bench/muon_vs_adamw.py                                    # 2 × 4 runs of 300 steps, one process
    python bench/muon_vs_adamw.py --steps 50 --lrs 4e-3 8e-3 --out /tmp/muon_bench

The runs are one `lmlab-train -m` sweep in `--out`; launched again, finished runs are read, not rerun.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from lmlab.compare import find_runs, load_run

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = ("adamw", "muon")
# gpt2-tiny (4 blocks of width 128) on the first 400 documents of the corpus, a 2048-token BPE, batches of 16 × 64
# tokens (~1M tokens a run, under one epoch); one validation, at the end, on 20 batches; no samples, no export.
COMMON = ["model=gpt2-tiny", "data.max_documents=400", "data.vocab_size=2048", "data.block_size=64",
          "data.batch_size=16", "scheduler.num_warmup_steps=30", "trainer.val_check_interval=${trainer.max_steps}",
          "trainer.limit_val_batches=20", "trainer.accelerator=cpu", "callbacks.samples=null",
          "callbacks.export_hf=null", "trainer.enable_progress_bar=false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lrs", nargs="+", default=["2e-3", "4e-3", "8e-3", "1.6e-2"])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench" / "muon_vs_adamw")
    args = parser.parse_args()

    command = [sys.executable, "-m", "lmlab.train", "-m", f"optimizer={','.join(OPTIMIZERS)}",
               f"optimizer.lr={','.join(args.lrs)}", *COMMON, f"trainer.max_steps={args.steps}",
               f"hydra.sweep.dir={args.out}"]
    print(" ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)

    losses: dict[tuple[str, float], float] = {}
    for run in map(load_run, find_runs([args.out])):
        loss = run.final("val/loss")
        if loss is not None and run.steps() == args.steps:
            losses[run.overrides["optimizer"], float(run.overrides["optimizer.lr"])] = loss
    lrs = sorted({lr for _, lr in losses})
    print(f"\nfinal val/loss after {args.steps} steps\n{'lr':>8} " + " ".join(f"{o:>8}" for o in OPTIMIZERS))
    for lr in lrs:
        print(f"{lr:>8g} " + " ".join(f"{losses.get((o, lr), float('nan')):>8.4f}" for o in OPTIMIZERS))
    best = {o: min((loss, lr) for (name, lr), loss in losses.items() if name == o) for o in OPTIMIZERS}
    for o, (loss, lr) in best.items():
        edge = " (an end of the grid: widen it)" if lr in (lrs[0], lrs[-1]) else ""
        print(f"best {o}: {loss:.4f} at lr {lr:g}{edge}")
    print(f"muon / adamw: {best['muon'][0] / best['adamw'][0]:.4f}")


if __name__ == "__main__":
    main()
