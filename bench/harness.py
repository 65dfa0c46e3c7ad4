"""What every benchmark script shares: a per-step clock each variant runs, subprocess launching,
interleaved rounds, paired ratios and the rich table."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


class StepClock:
    """Timestamps at the end of every optimizer step, plus what identifies the data and the start.

    The same instrument runs inside each variant (lmlab callback, raw loop, Trainer callback), so the
    variants are timed alike: steady-state tokens/s over the steps after `warmup`.
    """

    def __init__(self, output_file: str, warmup: int, steps: int, tokens_per_step: int):
        self.output_file, self.warmup, self.steps, self.tokens_per_step = output_file, warmup, steps, tokens_per_step
        self.times: list[float] = []
        self.first: dict = {}

    def record_first_batch(self, input_ids, loss) -> None:
        if not self.first:
            ids = input_ids.detach().cpu().long().contiguous()
            self.first = {"first_batch_sha": hashlib.sha256(ids.numpy().tobytes()).hexdigest()[:16],
                          "first_batch_head": ids[0, :8].tolist(), "first_loss": float(loss)}

    def tick(self) -> None:
        """Call at the end of each optimizer step; writes the result after the last one."""
        import torch

        step = len(self.times)
        if torch.cuda.is_available() and step in (self.warmup - 1, self.steps - 1):
            torch.cuda.synchronize()  # only at the window's edges: no extra sync inside the window
        self.times.append(time.perf_counter())
        if step == 0:
            self.first_step_at = time.time()
        if step == self.steps - 1:
            self.write()

    def write(self) -> None:
        import torch

        window = self.times[self.warmup - 1:]
        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else peak_rss()
        result = {**self.first, "tokens_per_sec": (len(window) - 1) * self.tokens_per_step / (window[-1] - window[0]),
                  "first_step_at": self.first_step_at, "peak_memory_mb": peak / 2**20, "steps": len(self.times)}
        Path(self.output_file).write_text(json.dumps(result))


def peak_rss() -> int:
    """This process's peak resident memory in bytes. Not `ru_maxrss`: Linux carries it over from the
    launching process through fork and exec, so every worker would report the launcher's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_worker(script: str, variant: str, spec_file: Path, out_file: Path, log_file: Path) -> dict:
    """Run one variant in a fresh process; adds `time_to_first_step` (from launch, imports included)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true", "PYTHONUNBUFFERED": "1"}
    out_file.unlink(missing_ok=True)
    launched = time.time()
    with open(log_file, "w") as log:
        proc = subprocess.run([sys.executable, script, "--worker", variant, "--spec", str(spec_file),
                               "--out", str(out_file)], stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0 or not out_file.is_file():
        tail = log_file.read_text()[-3000:]
        raise RuntimeError(f"{variant} failed (exit {proc.returncode}); log {log_file}:\n{tail}")
    result = json.loads(out_file.read_text())
    result["time_to_first_step"] = result["first_step_at"] - launched
    return result


def interleaved(variants: list[str], rounds: int, run) -> dict[str, list[dict]]:
    """A B C A B C …: machine drift hits every variant alike; returns each variant's results by round.

    A variant that fails is reported (its log's tail) and left out of the later rounds and the result, so
    one broken baseline does not cost the others' figures."""
    results: dict[str, list[dict]] = {v: [] for v in variants}
    failed: set[str] = set()
    for r in range(rounds):
        for v in variants:
            if v in failed:
                continue
            try:
                results[v].append(run(v, r))
            except RuntimeError as error:
                print(f"  round {r + 1}/{rounds} {v:6s} FAILED: {error}", file=sys.stderr, flush=True)
                failed.add(v)
                continue
            print(f"  round {r + 1}/{rounds} {v:6s} {results[v][-1]['tokens_per_sec']:10.0f} tokens/s",
                  file=sys.stderr, flush=True)
    return {v: rs for v, rs in results.items() if v not in failed}


def run_variants(script: str, variants: list[str], spec: dict, work: Path, log_dir: Path | None = None) -> dict:
    """Write `spec` for the workers, then run each variant's worker of `script`, interleaved over its rounds."""
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    logs = log_dir or work
    logs.mkdir(parents=True, exist_ok=True)
    return interleaved(variants, spec["rounds"], lambda v, r: run_worker(
        script, v, spec_file, work / f"{v}-{r}.json", logs / f"{v}-{r}.log"))


def paired_ratios(results: dict[str, list[dict]], a: str, b: str, key: str) -> list[float]:
    """a/b within each round (same machine state), one ratio per round."""
    return [x[key] / y[key] for x, y in zip(results[a], results[b], strict=True)]


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """Median and range, e.g. `1.02 (0.98–1.05)`."""
    median = fmt.format(statistics.median(values))
    return median if len(values) == 1 else f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def machine() -> str:
    import platform

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    return f"{device}, {cpu}, torch {torch.__version__}"


# ------------------------------------------------------------------------------- what the variants share
def seeded_shuffle(dataset, seed: int):
    """lmlab's training order (a permutation drawn from the run's seed, lmlab.distributed.train_sampler),
    so that every variant trains on the same batches."""
    import torch

    return torch.utils.data.DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed,
                                               drop_last=True)


def train_with_hf_trainer(spec: dict, model, dataset, collator, clock: StepClock, **training_args) -> None:
    """The `Trainer` as Hugging Face's example scripts set it up (fused AdamW, clipping, the spec's schedule),
    on `dataset` in lmlab's order, timed by `clock`."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    def first_batch(module, args, kwargs, output):  # the Trainer hides its batches: watch the model's input
        clock.record_first_batch(kwargs["input_ids"], output.loss)

    hook = model.register_forward_hook(first_batch, with_kwargs=True)

    class Tick(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            hook.remove()
            clock.tick()

    class SameOrderTrainer(Trainer):
        def _get_train_sampler(self, *args, **kwargs):
            return seeded_shuffle(self.train_dataset, spec["seed"])

    opt = spec["optimizer"]
    args = TrainingArguments(
        output_dir=str(Path(spec["work"]) / "hf-trainer"), max_steps=spec["steps"],
        per_device_train_batch_size=spec["batch"], learning_rate=opt["lr"], adam_beta1=opt["betas"][0],
        adam_beta2=opt["betas"][1], adam_epsilon=opt["eps"], weight_decay=opt["weight_decay"],
        lr_scheduler_type=spec["scheduler"]["name"], warmup_steps=spec["scheduler"]["num_warmup_steps"],
        max_grad_norm=spec["clip"], optim="adamw_torch_fused", seed=spec["seed"], dataloader_drop_last=True,
        save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(), **training_args,
    )
    SameOrderTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                     callbacks=[Tick()]).train()


def run_lmlab_cli(spec: dict, out: str, tokens_per_step: int) -> None:
    """`lmlab-train` itself (its Hydra main) in a fresh run directory, with one extra callback: the same
    clock as the other variants; validation only once, after the timed steps."""
    from lmlab.train import main

    run_dir = Path(spec["work"]) / f"lmlab-run-{Path(out).stem}"
    sys.argv = ["lmlab-train", *spec["overrides"], f"run_dir={run_dir}", "resume=never",
                f"trainer.val_check_interval={spec['steps']}",
                f"trainer.limit_val_batches={spec.get('val_batches', 1)}",
                "+callbacks.bench_clock._target_=lmlab_clock.LightningStepClock",
                f"+callbacks.bench_clock.output_file={out}", f"+callbacks.bench_clock.warmup={spec['warmup']}",
                f"+callbacks.bench_clock.steps={spec['steps']}",
                f"+callbacks.bench_clock.tokens_per_step={tokens_per_step}"]
    main()
