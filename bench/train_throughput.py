"""Training throughput: lmlab vs a minimal PyTorch loop vs the Hugging Face Trainer (run_clm.py-style).

Same model config, packed data (lmlab's cache, same shuffle order), AdamW (fused), gradient clipping 1.0,
cosine schedule, batch size, precision and steps; KV cache off everywhere. Each variant runs in its own
process, interleaved A B C A B C …; tokens/s is measured over the steps after warm-up by the same clock.

    python bench/train_throughput.py            # full: 5 rounds (CPU: 4x256 GPT-2, block 256; GPU: GPT-2 124M, bf16)
    python bench/train_throughput.py --model llama-124m   # GPU: the Llama-style 124M instead
    python bench/train_throughput.py --quick    # tiny sizes, one round (what tests/e2e/test_bench.py runs)
    python bench/train_throughput.py --variants lmlab --set model.compile=regional   # a candidate setting

On a GPU, lmlab runs `experiment=pretrain_gpu` (bf16, fused AdamW, the whole step compiled, dropout 0,
vocabulary padded to a multiple of 64); the raw loop and the Trainer train the same model config as a user
builds it (the tokenizer's vocabulary, eager). MFU is counted here, independently of lmlab's code:
(6·N + 12·layers·width·block) FLOPs per token, N the parameters of the unpadded model, over the GPU's dense
bf16 peak from the table below (`--peak-tflops` for another GPU); lmlab's own `train/mfu` is printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

from harness import (
    StepClock,
    machine,
    paired_ratios,
    print_table,
    run_lmlab_cli,
    run_variants,
    seeded_shuffle,
    spread,
    train_with_hf_trainer,
)

ROOT = Path(__file__).resolve().parents[1]
# Dense bf16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets (the "with sparsity" figures halved).
BF16_PEAK_TFLOPS = {"H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0,
                    "H200": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0}
GPU_MODELS = ("gpt2-124m", "llama-124m")
VARIANTS = ["lmlab", "raw", "hf"]
LABELS = {"lmlab": "lmlab (Hydra CLI, default callbacks + CSV logger)", "raw": "raw PyTorch loop",
          "hf": "HF Trainer (run_clm.py-style)"}


def profiles(quick: bool, gpu: bool, model: str = GPU_MODELS[0]) -> dict:
    """Sizes: (model overrides, block, batch, warm-up steps, measured steps, rounds)."""
    if quick:
        return {"overrides": ["model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2",
                              "data.vocab_size=512", "data.max_documents=60"],
                "block": 64, "batch": 8, "warmup": 2, "measured": 4, "rounds": 1}
    if gpu:  # a 124M model with GPT-2's vocabulary size, from scratch, as experiment=pretrain_gpu trains it
        return {"overrides": ["experiment=pretrain_gpu", f"model={model}"], "block": 1024, "batch": 16,
                "warmup": 10, "measured": 30, "rounds": 5,
                "val_batches": 0}  # no validation after the timed steps: its compiled graph costs device time only
    return {"overrides": ["model.config.n_layer=4", "model.config.n_embd=256", "model.config.n_head=4"],
            "block": 256, "batch": 8, "warmup": 3, "measured": 10, "rounds": 5}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from lmlab.config import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def make_spec(args, work: Path) -> dict:
    """Compose lmlab's config once; prepare (or reuse) its packed data; everything the workers share."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lmlab.data.tokenizer import special_token_ids

    p = profiles(args.quick, torch.cuda.is_available(), args.model)
    steps = p["warmup"] + p["measured"]
    overrides = [*p["overrides"], *args.set, f"data.block_size={p['block']}", f"data.batch_size={p['batch']}",
                 f"trainer.max_steps={steps}", "optimizer.fused=true", f"paths.cache_dir={args.cache_dir}"]
    cfg = compose([*overrides, f"paths.root_dir={work}"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    tokenizer = datamodule.tokenizer
    model_config = OmegaConf.to_container(cfg.model.config, resolve=True)
    model_config.update({k: v for k, v in special_token_ids(tokenizer).items() if v is not None},
                        vocab_size=len(tokenizer))
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    return {
        "overrides": overrides, "set": args.set, "work": str(work), "model_config": model_config,
        "train_dir": str(datamodule.datasets["train"].entry_dir),
        "block": p["block"], "batch": p["batch"], "val_batches": p.get("val_batches", 1),
        "warmup": p["warmup"], "steps": steps, "rounds": p["rounds"],
        "seed": cfg.seed, "bf16": "bf16" in str(cfg.trainer.precision), "clip": cfg.trainer.gradient_clip_val,
        "peak_flops": peak_flops(args.peak_tflops),
        "optimizer": {k: optimizer[k] for k in ("lr", "betas", "eps", "weight_decay")},
        "scheduler": {"name": cfg.scheduler.name, "num_warmup_steps": cfg.scheduler.num_warmup_steps},
    }


# ---------------------------------------------------------------------------------------------- workers
def clock_for(spec: dict, out: str) -> StepClock:
    return StepClock(out, spec["warmup"], spec["steps"], spec["batch"] * spec["block"])


def packed_blocks(spec: dict):
    """The packed token stream lmlab wrote, as fixed-length blocks (nanoGPT-style, no lmlab code)."""
    import numpy as np
    import torch

    meta = json.loads((Path(spec["train_dir"]) / "meta.json").read_text())
    (shard,) = meta.get("shards", [{"file": "tokens.bin"}])  # the bench corpus fits in one shard file
    tokens = np.memmap(Path(spec["train_dir"]) / shard["file"], dtype=meta["dtype"], mode="r")
    block = meta["block_size"]

    class Blocks(torch.utils.data.Dataset):
        def __len__(self):
            return meta["num_blocks"]

        def __getitem__(self, i):
            ids = torch.from_numpy(tokens[i * block:(i + 1) * block].astype(np.int64))
            return {"input_ids": ids, "labels": ids}

    return Blocks()


def new_model(spec: dict):
    """The model as a user builds it: the same config class and values, SDPA attention, KV cache off."""
    from hydra.utils import get_class
    from transformers import AutoModelForCausalLM

    config_class = get_class(spec["model_config"]["_target_"])
    config = config_class(**{k: v for k, v in spec["model_config"].items() if k != "_target_"}, use_cache=False)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").train()


def peak_flops(tflops: float | None) -> float | None:
    """The GPU's dense bf16 peak in FLOP/s: `--peak-tflops`, else the table; None on a CPU or unknown GPU."""
    import torch

    if tflops:
        return tflops * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((t * 1e12 for key, t in BF16_PEAK_TFLOPS.items() if key in name), None)


def model_flops_per_token(spec: dict) -> float:
    """6·N + 12·layers·width·block (PaLM appendix B; nanoGPT's estimate_mfu), N counted on the unpadded model."""
    import torch

    with torch.device("meta"):
        model = new_model(spec)
    params = sum(p.numel() for p in model.parameters())
    return 6 * params + 12 * model.config.num_hidden_layers * model.config.hidden_size * spec["block"]


def run_raw(spec: dict, out: str) -> None:
    import torch
    from transformers import get_scheduler

    torch.manual_seed(spec["seed"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = new_model(spec).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": spec["optimizer"]["weight_decay"]},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    opt = spec["optimizer"]
    optimizer = torch.optim.AdamW(groups, lr=opt["lr"], betas=opt["betas"], eps=opt["eps"], fused=True)
    scheduler = get_scheduler(spec["scheduler"]["name"], optimizer, spec["scheduler"]["num_warmup_steps"],
                              spec["steps"])
    blocks = packed_blocks(spec)
    loader = torch.utils.data.DataLoader(blocks, batch_size=spec["batch"], sampler=seeded_shuffle(blocks, spec["seed"]),
                                         drop_last=True,
                                         pin_memory=device == "cuda")
    clock = clock_for(spec, out)
    for _, batch in zip(range(spec["steps"]), loader, strict=False):
        input_ids = batch["input_ids"].to(device, non_blocking=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=spec["bf16"]):
            loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec["clip"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        clock.record_first_batch(input_ids, loss)
        clock.tick()


def run_hf(spec: dict, out: str) -> None:
    from transformers import default_data_collator, set_seed

    set_seed(spec["seed"])
    # The Trainer's loss divides by `num_items_in_batch`, which counts the labels before the shift:
    # batch×block, not batch×(block-1) as the others do, so it reads (block-1)/block lower for the same weights.
    train_with_hf_trainer(spec, new_model(spec), packed_blocks(spec), default_data_collator, clock_for(spec, out),
                          bf16=spec["bf16"])


def run_lmlab(spec: dict, out: str) -> None:
    run_lmlab_cli(spec, out, tokens_per_step=spec["batch"] * spec["block"])
    # lmlab's own MFU count (SpeedMonitor: train/mfu per train/tokens_per_sec), to check against ours
    metrics = Path(spec["work"]) / f"lmlab-run-{Path(out).stem}" / "metrics.csv"
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("train/mfu")] if metrics.is_file() else []
    if rows:
        result = json.loads(Path(out).read_text())
        result["lmlab_mfu_per_token_per_sec"] = float(rows[-1]["train/mfu"]) / float(rows[-1]["train/tokens_per_sec"])
        Path(out).write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------- report
def report(spec: dict, results: dict[str, list[dict]]) -> dict:
    tokens_per_step = spec["batch"] * spec["block"]
    per_token = model_flops_per_token(spec)
    peak = spec.get("peak_flops")
    mfu = {v: statistics.median(r["tokens_per_sec"] for r in rs) * per_token / peak
           for v, rs in results.items()} if peak else {}
    rows = []
    for v, rs in results.items():
        rows.append([LABELS[v], spread([r["tokens_per_sec"] for r in rs], "{:.0f}"),
                     spread([1000 * tokens_per_step / r["tokens_per_sec"] for r in rs], "{:.1f}"),
                     f"{mfu[v]:.1%}" if peak else "n/a",
                     spread([r["time_to_first_step"] for r in rs], "{:.1f}"),
                     spread([r["peak_memory_mb"] for r in rs], "{:.0f}"), f"{rs[0]['first_loss']:.4f}"])
    steps = f"{spec['steps'] - spec['warmup']} measured steps after {spec['warmup']} warm-up"
    print_table(f"Training throughput: batch {spec['batch']} x block {spec['block']}, {steps}, "
                f"{max(map(len, results.values()))} interleaved rounds",
                ["variant", "tokens/s", "ms/step", "MFU", "time to first step (s)", "peak memory (MB)",
                 "first-step loss"], rows)
    vs_raw, vs_hf = (paired_ratios(results, "lmlab", b, "tokens_per_sec") if {"lmlab", b} <= results.keys()
                     else [] for b in ("raw", "hf"))
    line = (f"lmlab / raw PyTorch loop: {spread(vs_raw) + 'x' if vs_raw else 'n/a'} tokens/s; lmlab / HF Trainer: "
            f"{spread(vs_hf) + 'x' if vs_hf else 'n/a'} (median (range) of {len(vs_raw or vs_hf)} paired rounds; "
            f"{machine()})")
    print(line)
    summary = {"spec": spec, "results": results, "lmlab_vs_raw": vs_raw, "lmlab_vs_hf": vs_hf, "readme_line": line,
               "flops_per_token": per_token, "mfu": mfu}
    if peak:
        print(f"MFU: (6·N + 12·L·H·T) = {per_token / 1e9:.3f} GFLOP per token over a {peak / 1e12:.1f} TFLOP/s "
              "bf16 peak (counted by this script)")
        own = [r["lmlab_mfu_per_token_per_sec"] for r in results.get("lmlab", [])
               if "lmlab_mfu_per_token_per_sec" in r]
        if own:
            summary["lmlab_reported_mfu"] = statistics.median(
                r["tokens_per_sec"] for r in results["lmlab"]) * statistics.median(own)
            print(f"lmlab's own train/mfu at the same tokens/s: {summary['lmlab_reported_mfu']:.1%} "
                  f"({summary['lmlab_reported_mfu'] / mfu['lmlab']:.3f}x this script's count)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 5, or 1 with --quick)")
    parser.add_argument("--cache-dir", default=str(ROOT / "outputs" / ".cache"), help="lmlab's data cache")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--model", choices=GPU_MODELS, default=GPU_MODELS[0], help="the GPU profile's model")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS, help="which to run")
    parser.add_argument("--log-dir", help="keep each worker's log here (default: only a failure's tail is shown)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="lmlab overrides added to the profile's (e.g. model.compile=regional): a candidate")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not in the table")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        {"lmlab": run_lmlab, "raw": run_raw, "hf": run_hf}[args.worker](spec, args.out)
        return

    with tempfile.TemporaryDirectory(prefix="lmlab-bench-") as tmp:
        work = Path(tmp)
        spec = make_spec(args, work)
        spec["rounds"] = args.rounds or spec["rounds"]
        results = run_variants(__file__, args.variants, spec, work, Path(args.log_dir) if args.log_dir else None)
        summary = report(spec, results)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
