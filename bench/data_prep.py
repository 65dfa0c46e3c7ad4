"""Data preparation: lmlab's tokenize-and-pack vs run_clm.py's `datasets.map(tokenize)` + `group_texts`.

Both pipelines get the same documents and the same tokenizer (lmlab's BPE trained on the stdlib corpus)
and produce fixed-length blocks; tokens/s counts the tokens each one produced. Corpora: the embedded
stdlib corpus (train split) and WikiText-2 from a local copy when present (`WIKITEXT`; one example
per line, as run_clm.py's "text" loader gives it). Then the time for a second, cached run of lmlab's
data module to be ready (prepare_data + setup + first batch, in a fresh data module).

    python bench/data_prep.py            # full corpora
    python bench/data_prep.py --quick    # a slice of each (what tests/e2e/test_bench.py runs)

Scale mode (`bench/data_prep_scale.py`): one ~1 GiB text file, tokenized by lmlab and by run_clm.py's
pipeline, each in its own process, with peak memory; needs ~10 GB free in --work-dir for run_clm.py's
Arrow cache:

    python bench/data_prep.py --scale                          # 1024 MiB
    python bench/data_prep.py --scale --scale-mb 4 --quick     # a check that it runs
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from itertools import chain
from pathlib import Path

from harness import machine, print_table

ROOT = Path(__file__).resolve().parents[1]
WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext2_raw"


def corpora(max_documents: int | None) -> dict[str, list[str]]:
    from lmlab.data import StdlibCorpus

    found = {"stdlib": list(StdlibCorpus().documents("train"))[:max_documents]}
    files = [WIKITEXT / f"wiki.{s}.raw" for s in ("train", "valid", "test") if (WIKITEXT / f"wiki.{s}.raw").is_file()]
    if files:
        lines = list(chain.from_iterable(f.read_text().splitlines(keepends=True) for f in files))
        found["wikitext2"] = lines[: max_documents and max_documents * 50]
    return found


def lmlab_pack(documents: list[str], tokenizer, block_size: int, out: Path) -> int:
    from lmlab.data.packing import PackedBlocks, write_token_stream

    out.mkdir()
    meta = write_token_stream(documents, tokenizer, out, block_size)
    PackedBlocks(out)[0]  # ready to serve
    return meta["num_tokens"]


def group_texts_of(examples: dict, block_size: int) -> dict:
    """run_clm.py's `group_texts`, verbatim but for `block_size` as an argument."""
    concatenated_examples = {k: list(chain(*examples[k])) for k in examples}
    total_length = len(concatenated_examples[list(examples.keys())[0]])
    total_length = (total_length // block_size) * block_size
    result = {k: [t[i: i + block_size] for i in range(0, total_length, block_size)]
              for k, t in concatenated_examples.items()}
    result["labels"] = result["input_ids"].copy()
    return result


def run_clm_pack(documents: list[str], tokenizer, block_size: int, cache: Path) -> int:
    """run_clm.py's steps: a `datasets.Dataset` of text, `map(tokenize, batched=True)`, `map(group_texts)`."""
    from datasets import Dataset, disable_caching

    disable_caching()  # an in-memory dataset is not cached by `map` anyway; keep it that way for both corpora
    raw = Dataset.from_dict({"text": documents})

    def tokenize_function(examples):
        return tokenizer(examples["text"])

    group_texts = partial(group_texts_of, block_size=block_size)
    tokenized = raw.map(tokenize_function, batched=True, remove_columns=["text"])
    num_tokens = sum(len(ids) for ids in tokenized["input_ids"])
    blocks = tokenized.map(group_texts, batched=True)
    blocks[0]  # ready to serve
    return num_tokens


def cached_ready_seconds(overrides: list[str], cache_dir: str, work: Path) -> tuple[float, float]:
    """(first build, second cached run) of lmlab's data module, in-process, till the first batch."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from hydra.utils import instantiate
    from train_throughput import compose

    cfg = compose([*overrides, f"paths.cache_dir={cache_dir}", f"paths.root_dir={work}"])
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        datamodule = instantiate(cfg.data)
        datamodule.prepare_data()
        datamodule.setup("fit")
        next(iter(datamodule.train_dataloader()))
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a slice of each corpus")
    parser.add_argument("--cache-dir", default=str(ROOT / "outputs" / ".cache"), help="lmlab's tokenizer cache")
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--scale", action="store_true", help="one big text file instead (data_prep_scale.py)")
    parser.add_argument("--scale-mb", type=float, default=1024, help="size of the --scale file, MiB")
    parser.add_argument("--work-dir", help="where --scale writes its file and caches (default: a temp dir)")
    args = parser.parse_args()

    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    overrides = ["data.vocab_size=512", "data.max_documents=60"] if args.quick else []
    overrides.append(f"data.block_size={args.block_size}")
    with tempfile.TemporaryDirectory(prefix="lmlab-bench-data-") as tmp:
        work = Path(tmp)
        # the lmlab tokenizer (trained once, cached), loaded here so neither pipeline pays for it
        from hydra.utils import instantiate
        from train_throughput import compose

        cfg = compose([*overrides, f"paths.cache_dir={args.cache_dir}", f"paths.root_dir={work}"])
        tokenizer = instantiate(cfg.data).tokenizer
        if args.scale:
            scale(args, tokenizer, Path(args.work_dir) if args.work_dir else work)
            return
        rows, figures = [], {}
        for name, documents in corpora(60 if args.quick else None).items():
            timings = {}
            for variant, pack in (("lmlab", lmlab_pack), ("run_clm", run_clm_pack)):
                start = time.perf_counter()
                tokens = pack(documents, tokenizer, args.block_size, work / f"{name}-{variant}")
                timings[variant] = (tokens, time.perf_counter() - start)
            speed = {v: t / s for v, (t, s) in timings.items()}
            figures[name] = {"documents": len(documents), **{f"{v}_tokens": t for v, (t, _) in timings.items()},
                             **{f"{v}_tokens_per_sec": s for v, s in speed.items()},
                             "ratio": speed["lmlab"] / speed["run_clm"]}
            rows.append([name, f"{len(documents):,}", f"{timings['lmlab'][0]:,}", f"{speed['lmlab']:,.0f}",
                         f"{speed['run_clm']:,.0f}", f"{speed['lmlab'] / speed['run_clm']:.2f}x"])
        # a fresh cache, with the same tokenizer (by directory): the first run tokenizes, the second reuses
        first, cached = cached_ready_seconds([*overrides, f"data.tokenizer={tokenizer.name_or_path}"],
                                             str(work / "cache"), work)
    print_table(f"Tokenize and pack (block {args.block_size}), same tokenizer",
                ["corpus", "documents", "tokens", "lmlab tokens/s", "run_clm.py tokens/s", "lmlab / run_clm"], rows)
    line = (", ".join(f"{n}: lmlab {f['ratio']:.2f}x run_clm.py's tokens/s" for n, f in figures.items())
            + f"; stdlib data module ready from its cache in {cached:.2f} s (first build {first:.1f} s); {machine()}")
    print(line)
    if args.json:
        Path(args.json).write_text(json.dumps({"corpora": figures, "first_build_seconds": first,
                                               "cached_ready_seconds": cached, "readme_line": line}, indent=2))


def scale(args, tokenizer, work: Path) -> None:
    import data_prep_scale

    work.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(work / "tokenizer")
    spec = {"work": str(work), "megabytes": args.scale_mb, "tokenizer": str(work / "tokenizer"),
            "block_size": args.block_size, "max_documents": 60 if args.quick else None}
    figures = data_prep_scale.run(spec)
    figures["readme_line"] += f"; {machine()}"
    print(figures["readme_line"])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
