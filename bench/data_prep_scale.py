"""`data_prep.py --scale`: one big text file (the stdlib sources concatenated, repeated to `--scale-mb`),
tokenized by lmlab's data module and by run_clm.py's `load_dataset("text")` + `map(tokenize)` +
`map(group_texts)`, and, for reference, lmlab on the stdlib as many small documents. Each pipeline runs in
its own process; its memory is the peak, sampled every 0.1 s, of the PSS summed over its process tree
(workers included, pages shared after fork counted once), plus the main process's peak RSS (VmHWM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

from data_prep import group_texts_of
from harness import peak_rss, print_table

VARIANTS = ("lmlab-file", "lmlab-docs", "run_clm-file")


def write_corpus(path: Path, megabytes: float) -> int:
    """The stdlib's train-split sources, concatenated and repeated until the file holds `megabytes` MiB."""
    from lmlab.data import StdlibCorpus

    documents, target, size = list(StdlibCorpus().documents("train")), int(megabytes * 2**20), 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target:
            for doc in documents:
                f.write(doc)
                size += len(doc.encode("utf-8"))
                if size >= target:
                    break
    return size


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            todo += [int(c) for c in children]
    return found


def _tree_pss(pid: int) -> int:
    total = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:  # a worker that just exited
            pass
    return total


class TreeMemory:
    """Peak PSS of this process and its descendants, sampled on a thread."""

    def __init__(self, every: float = 0.1):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_pss(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child(variant: str, spec: dict) -> dict:
    """One pipeline, in this (fresh) process: tokens, seconds, memory."""
    work = Path(spec["work"]) / variant
    work.mkdir(parents=True, exist_ok=True)
    with TreeMemory() as memory:
        if variant.startswith("lmlab"):
            tokens, seconds = _lmlab(variant, spec, work)
        else:
            tokens, seconds = _run_clm(spec, work)
    return {"variant": variant, "tokens": tokens, "seconds": seconds, "tokens_per_sec": tokens / seconds,
            "peak_tree_pss_mb": memory.peak / 2**20, "peak_main_rss_mb": peak_rss() / 2**20}


def _lmlab(variant: str, spec: dict, work: Path) -> tuple[int, float]:
    from lmlab.data import PretrainDataModule, StdlibCorpus, TextFiles

    source = TextFiles(train=spec["file"]) if variant == "lmlab-file" else StdlibCorpus()
    datamodule = PretrainDataModule(source=source, tokenizer=spec["tokenizer"], block_size=spec["block_size"],
                                    cache_dir=str(work / "cache"),
                                    max_documents=spec["max_documents"] if variant == "lmlab-docs" else None)
    datamodule.split_key("train")  # the tokenizer loaded before the clock starts, as for run_clm.py
    start = time.perf_counter()
    datamodule.prepare_data()
    seconds = time.perf_counter() - start
    metas = [json.loads((work / "cache" / "packed" / datamodule.split_key(s) / "meta.json").read_text())
             for s in ("train", "validation")]
    return sum(m["num_tokens"] for m in metas), seconds


def _run_clm(spec: dict, work: Path) -> tuple[int, float]:
    """run_clm.py's steps on a text file: the `text` loader (keep_linebreaks), tokenize, group_texts."""
    import pyarrow.compute as pc
    from datasets import load_dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec["tokenizer"])
    block_size = spec["block_size"]

    def tokenize_function(examples):
        return tokenizer(examples["text"])

    group_texts = partial(group_texts_of, block_size=block_size)

    start = time.perf_counter()
    raw = load_dataset("text", data_files={"train": spec["file"]}, cache_dir=str(work / "hf"), keep_linebreaks=True)
    tokenized = raw.map(tokenize_function, batched=True, remove_columns=["text"])
    blocks = tokenized.map(group_texts, batched=True)
    blocks["train"][0]  # ready to serve
    seconds = time.perf_counter() - start
    tokens = pc.sum(pc.list_value_length(tokenized["train"].data.column("input_ids"))).as_py()
    return tokens, seconds


def run(spec: dict) -> dict:
    """Write the file, run every pipeline in its own process, print the table; returns the figures."""
    file = Path(spec["work"]) / "corpus.txt"
    size = write_corpus(file, spec["megabytes"])
    spec = {**spec, "file": str(file)}
    (Path(spec["work"]) / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    results = {}
    for variant in VARIANTS:
        out = Path(spec["work"]) / f"{variant}.json"
        proc = subprocess.run([sys.executable, __file__, variant, str(Path(spec["work"]) / "spec.json"), str(out)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
        results[variant] = json.loads(out.read_text())
        print(f"  {variant}: {results[variant]['tokens_per_sec']:,.0f} tokens/s", file=sys.stderr, flush=True)
    corpus = {"lmlab-file": f"one {size / 2**20:,.0f} MiB file", "run_clm-file": f"one {size / 2**20:,.0f} MiB file",
              "lmlab-docs": "stdlib, many documents"}
    print_table(f"Tokenize and pack at scale (block {spec['block_size']}), same tokenizer",
                ["pipeline", "corpus", "tokens", "seconds", "tokens/s", "peak PSS, all processes (MB)",
                 "peak RSS, main (MB)"],
                [[v.split("-")[0], corpus[v], f"{r['tokens']:,}", f"{r['seconds']:.1f}", f"{r['tokens_per_sec']:,.0f}",
                  f"{r['peak_tree_pss_mb']:,.0f}", f"{r['peak_main_rss_mb']:,.0f}"] for v, r in results.items()])
    file_rate, docs_rate = results["lmlab-file"]["tokens_per_sec"], results["lmlab-docs"]["tokens_per_sec"]
    vs_run_clm = file_rate / results["run_clm-file"]["tokens_per_sec"]
    line = (f"one {size / 2**20:,.0f} MiB file: lmlab {file_rate:,.0f} tokens/s "
            f"({file_rate / docs_rate:.2f}x its rate on many small documents, {vs_run_clm:.2f}x run_clm.py's), "
            f"peak memory {results['lmlab-file']['peak_tree_pss_mb']:,.0f} MB (run_clm.py: "
            f"{results['run_clm-file']['peak_tree_pss_mb']:,.0f} MB)")
    return {"bytes": size, "results": results, "file_vs_docs": file_rate / docs_rate, "lmlab_vs_run_clm": vs_run_clm,
            "readme_line": line}


if __name__ == "__main__":
    variant_arg, spec_file, out_file = sys.argv[1:4]
    Path(out_file).write_text(json.dumps(child(variant_arg, json.loads(Path(spec_file).read_text()))))
