"""Where a training step's time goes: torch.profiler over a few steps of a real `lmlab-train` run, kernels
summed by category per step (the table of docs/performance.md).

    python bench/step_profile.py experiment=pretrain_gpu              # on a GPU: GPT-2 124M as benchmarked
    python bench/step_profile.py experiment=pretrain_gpu model=llama-124m
    python bench/step_profile.py model=gpt2-tiny --steps 3 --out p.json   # CPU: CPU-side ops instead of kernels

Steps 1..warm-up are excluded (compilation, allocator warm-up); `--out` keeps the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch

# First match wins: kernel (or op) name fragments → category.
CATEGORIES = [
    ("attention", ("flash", "fmha", "cudnn", "attention", "sdpa")),
    ("softmax / cross-entropy", ("softmax", "nll", "cross_entropy", "logsumexp")),
    ("optimizer + clipping", ("adam", "multi_tensor", "foreach", "norm_kernel", "clip")),
    ("matrix products", ("gemm", "cutlass", "xmma", "nvjet", "cublas", "matmul", "addmm", "aten::mm", "bmm",
                         "linear")),
    ("compiled fused (Triton)", ("triton",)),
    ("copies and casts", ("copy", "cast", "to_copy", "memcpy", "memset", "fill")),
]


def category(name: str) -> str:
    lowered = name.lower()
    return next((label for label, keys in CATEGORIES if any(k in lowered for k in keys)), "other")


class ProfileSteps(L.Callback):
    """Profiles optimizer steps `warmup+1 … warmup+steps` and writes the per-step table."""

    def __init__(self, warmup: int, steps: int, out: str):
        self.warmup, self.steps, self.out = warmup, steps, out
        self.profiler: torch.profiler.profile | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup and self.profiler is None:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
                torch.cuda.synchronize()
            self.profiler = torch.profiler.profile(activities=activities)
            self.profiler.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.profiler is None or trainer.global_step != self.warmup + self.steps:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.profiler.stop()
        gpu = torch.cuda.is_available()
        totals: dict[str, float] = defaultdict(float)
        kernels: dict[str, float] = defaultdict(float)
        for event in self.profiler.key_averages():
            # on a GPU the device time of kernels; on a CPU the self time of leaf ops
            micros = event.self_device_time_total if gpu else event.self_cpu_time_total
            if micros <= 0 or (not gpu and event.key.startswith(("ProfilerStep", "[pl]"))):
                continue
            totals[category(event.key)] += micros / 1000 / self.steps
            kernels[event.key] += micros / 1000 / self.steps
        table = {"per_step_ms": dict(sorted(totals.items(), key=lambda kv: -kv[1])),
                 "total_ms": sum(totals.values()), "device": torch.cuda.get_device_name() if gpu else "cpu",
                 "top": dict(sorted(kernels.items(), key=lambda kv: -kv[1])[:25])}
        Path(self.out).write_text(json.dumps(table, indent=2))
        print(f"\n{'device' if gpu else 'CPU'} time per step ({table['device']}), steps {self.warmup + 1}-"
              f"{self.warmup + self.steps}:")
        for label, ms in table["per_step_ms"].items():
            print(f"  {label:28s} {ms:8.2f} ms")
        print(f"  {'total':28s} {table['total_ms']:8.2f} ms\n  top kernels:")
        for name, ms in list(table["top"].items())[:12]:
            print(f"    {ms:8.2f} ms  {name[:100]}")
        self.profiler = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=None, help="JSON file for the table (default: in the run directory)")
    args, overrides = parser.parse_known_args()
    run_dir = Path(tempfile.mkdtemp(prefix="lmlab-profile-"))
    out = args.out or str(run_dir / "step_profile.json")
    sys.path.insert(0, str(Path(__file__).parent))
    from lmlab.train import main as train_main

    sys.argv = ["lmlab-train", *overrides, f"run_dir={run_dir}", "resume=never", "trainer.limit_val_batches=0",
                f"trainer.max_steps={args.warmup + args.steps}",
                "+callbacks.step_profile._target_=step_profile.ProfileSteps",
                f"+callbacks.step_profile.warmup={args.warmup}", f"+callbacks.step_profile.steps={args.steps}",
                f"+callbacks.step_profile.out={out}"]
    train_main()


if __name__ == "__main__":
    main()
