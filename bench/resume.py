"""Resume latency against the position in the epoch: t(resume at 90% of an epoch) / t(resume at 10%).

Hugging Face's Trainer resumes mid-epoch by drawing and discarding every batch already seen, so its resume
time grows with the position (hours late in a long epoch; transformers #11284). lmlab's training order is a
function of the optimizer step (`lmlab.distributed.GlobalOrderSampler`): a resume starts at sample
`global_step x global batch` in O(1). This script measures it through the CLI.

A one-step run of a tiny GPT-2 on the whole stdlib corpus (block 128, batch 16: an epoch of ~4,000 steps)
writes a checkpoint; copies of it are moved to 10% and 90% of the epoch (step counters, optimizer and
schedule state: what a real checkpoint at that step holds, the weights aside); then `lmlab-train
ckpt_path=<copy>` is timed from launch to the end of its first step, rounds interleaved.

    python bench/resume.py               # 5 rounds (~3 min on 2 cores; the first run builds the data cache)
    python bench/resume.py --quick       # a slice of the corpus, 1 round (what tests/e2e/test_bench.py runs)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import machine, print_table, spread

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16
RUN = ["model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2", "data.block_size=128",
       f"data.batch_size={BATCH}", "data.vocab_size=2048", "trainer.limit_val_batches=0",
       "trainer.num_sanity_val_steps=0", "callbacks.samples=null", "callbacks.export_hf=null",
       "callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
       "callbacks.last_checkpoint.every_n_train_steps=1"]


def lmlab_train(args: list[str], clock_file: Path | None = None) -> float:
    """Run `lmlab-train <args>`; returns the seconds from launch to the end of its first step."""
    clock = [] if clock_file is None else [
        "+callbacks.bench_clock._target_=lmlab_clock.LightningStepClock",
        f"+callbacks.bench_clock.output_file={clock_file}", "+callbacks.bench_clock.warmup=1",
        "+callbacks.bench_clock.steps=2", "+callbacks.bench_clock.tokens_per_step=1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), os.environ.get("PYTHONPATH")]))}
    launched = time.time()
    result = subprocess.run([sys.executable, "-m", "lmlab.train", *args, *clock], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"lmlab-train {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(clock_file.read_text())["first_step_at"] - launched if clock_file else 0.0


def steps_per_epoch(overrides: list[str]) -> int:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from lmlab.config import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "run_name=bench"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    return len(datamodule.datasets["train"]) // BATCH


def at_step(checkpoint: Path, step: int, out: Path) -> Path:
    """A copy of a step-1 checkpoint whose counters, optimizer and schedule state say `step`."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["global_step"] = step
    loop = state["loops"]["fit_loop"]
    for scope in ("current", "total"):
        loop["epoch_loop.batch_progress"][scope] = {"ready": step, "started": step, "processed": step,
                                                    "completed": step - 1}
        loop["epoch_loop.scheduler_progress"][scope] = {"ready": step, "completed": step}
        for counter in loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"].values():
            counter[scope] = {key: step for key in counter[scope]}
    loop["epoch_loop.state_dict"]["_batches_that_stepped"] = step
    for param_state in state["optimizer_states"][0]["state"].values():
        param_state["step"] = torch.tensor(float(step))
    state["lr_schedulers"][0].update(last_epoch=step, _step_count=step + 1)
    state["data_position"].update(global_step=step, global_samples=step * state["data_position"]["global_batch_size"])
    torch.save(state, out)
    return out


def final_step(run_dir: Path) -> int:
    import torch

    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", mmap=True,
                      weights_only=False)["global_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a slice of the corpus, one round")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "outputs" / ".cache", help="lmlab's data cache")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    overrides = [*RUN, f"paths.cache_dir={args.cache_dir.resolve()}"]
    if args.quick:
        overrides.append("data.max_documents=100")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lmlab_train([*overrides, "trainer.max_steps=1", f"run_dir={work / 'first'}"])
        epoch = steps_per_epoch(overrides)
        positions = {"10%": max(2, epoch // 10), "90%": epoch * 9 // 10}
        checkpoints = {name: at_step(work / "first" / "checkpoints" / "last.ckpt", step, work / f"{name[:2]}.ckpt")
                       for name, step in positions.items()}
        times: dict[str, list[float]] = {name: [] for name in positions}
        final_steps: dict[str, list[int]] = {name: [] for name in positions}
        for r in range(rounds):
            for name, step in positions.items():
                run_dir = work / f"resume-{name[:2]}-{r}"
                times[name].append(lmlab_train([*overrides, f"ckpt_path={checkpoints[name]}", f"run_dir={run_dir}",
                                                f"trainer.max_steps={step + 2}"], work / "clock.json"))
                final_steps[name].append(final_step(run_dir))
                print(f"  round {r + 1}/{rounds} resume at {name}: {times[name][-1]:.2f} s", file=sys.stderr)

    ratios = [b / a for a, b in zip(times["10%"], times["90%"], strict=True)]
    print_table(f"Resume latency, epoch of {epoch} steps ({machine()})",
                ["resume at", "step", "launch → first step (s)"],
                [[name, str(positions[name]), spread(times[name])] for name in positions])
    readme_line = f"t(90%) / t(10%) = {spread(ratios)} (median (range) of {rounds} paired rounds)"
    print(readme_line)
    if args.json:
        args.json.write_text(json.dumps({"steps_per_epoch": epoch, "positions": positions, "seconds": times,
                                         "final_steps": final_steps, "ratios": ratios,
                                         "median_ratio": statistics.median(ratios), "readme_line": readme_line},
                                        indent=2))


if __name__ == "__main__":
    main()
