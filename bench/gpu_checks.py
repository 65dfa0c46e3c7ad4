"""Every GPU path trains, checkpoints and resumes: `experiment=pretrain_gpu` (bf16-mixed, fused AdamW,
clipping 1.0) as it is, with `model.compile=true`, with `trainer.precision=16-mixed`, and with `trainer=fsdp`
on one GPU. Each check is two launches of `lmlab-train` in one run directory: N steps (checkpoints on the
way), then `resume=force` to N + 5 steps, which must continue from the checkpoint, not start again.

    python bench/gpu_checks.py                          # all four (a few minutes on an H100)
    python bench/gpu_checks.py --only compile fp16      # some of them
    python bench/gpu_checks.py --base model=gpt2-tiny data.vocab_size=512 trainer.accelerator=cpu --only preset
                                                        # a dry run of the harness on a CPU
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {
    "preset": [],  # bf16-mixed + fused AdamW + clipping: what crashed at the first step
    "compile": ["model.compile=true"],
    "fp16": ["trainer.precision=16-mixed"],
    "fsdp": ["trainer=fsdp"],
}
BASE = ["experiment=pretrain_gpu", "model.compile=false", "trainer.val_check_interval=5", "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0", "callbacks.last_checkpoint.every_n_train_steps=5",
        "callbacks.samples.max_new_tokens=8", "trainer.log_every_n_steps=1"]
STEPS = 10


def launch(overrides: list[str], log: Path) -> int:
    with log.open("w") as f:
        return subprocess.run([sys.executable, "-m", "lmlab.train", *overrides], cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT).returncode


def check(name: str, base: list[str], out: Path) -> dict:
    run_dir = out / name
    overrides = [*base, *CHECKS[name], f"run_dir={run_dir}", f"paths.cache_dir={ROOT / 'outputs' / '.cache'}"]
    result: dict = {"check": name, "overrides": CHECKS[name]}
    result["first_rc"] = launch([*overrides, f"trainer.max_steps={STEPS}"], out / f"{name}-1.log")
    first = json.loads((run_dir / "finished.json").read_text()) if (run_dir / "finished.json").is_file() else {}
    result["checkpoint"] = (run_dir / "checkpoints" / "last.ckpt").is_file()
    result["second_rc"] = launch([*overrides, f"trainer.max_steps={STEPS + 5}", "resume=force"], out / f"{name}-2.log")
    second = json.loads((run_dir / "finished.json").read_text()) if (run_dir / "finished.json").is_file() else {}
    resumes = (run_dir / "resumes.jsonl").read_text().splitlines() if (run_dir / "resumes.jsonl").is_file() else []
    metrics = run_dir / "metrics.csv"
    with metrics.open() if metrics.is_file() else open(os.devnull) as f:
        losses = [(int(r["step"]), float(r["train/loss"])) for r in csv.DictReader(f) if r.get("train/loss")]
    resumed_losses = [v for step, v in losses if step > STEPS]  # logged by the resumed launch
    result.update(steps=[first.get("global_step"), second.get("global_step")], resumed=len(resumes) == 1,
                  losses_finite=bool(resumed_losses) and all(math.isfinite(v) for _, v in losses),
                  val_loss=second.get("metric"))
    result["ok"] = (result["first_rc"] == 0 and result["second_rc"] == 0 and result["checkpoint"]
                    and result["steps"] == [STEPS, STEPS + 5] and result["resumed"] and result["losses_finite"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), default=list(CHECKS))
    parser.add_argument("--base", nargs="*", default=[], help="overrides added to every launch")
    parser.add_argument("--out", help="keep run directories and logs here (default: a temporary directory)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="lmlab-gpu-checks-"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.only:
        results.append(check(name, [*BASE, *args.base], out))
        r = results[-1]
        print(f"{'PASS' if r['ok'] else 'FAIL'} {name:8s} exit codes {r['first_rc']}/{r['second_rc']}, steps "
              f"{r['steps']}, resumed {r['resumed']}, finite losses {r['losses_finite']}, val/loss {r['val_loss']}"
              + ("" if r["ok"] else f"  (logs: {out}/{name}-*.log)"), flush=True)
    (out / "gpu_checks.json").write_text(json.dumps(results, indent=2))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
