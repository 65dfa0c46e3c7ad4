"""Reading packed blocks: from S3 (a local moto server on 127.0.0.1, through s3fs and lmlab's shard cache)
vs from local disk (`PackedBlocks`, memory-mapped), in the training order of `data=remote`.

The corpus is random token ids written as a cache entry (`meta.json` + shards), so no tokenizing is timed.
Every block of the split is read once, in `ShardWindowSampler`'s order, with the next step's shards
prefetched as `RemoteDataModule` does; tokens/s counts the tokens read.

    python bench/remote_read.py             # 256 MiB of tokens in 8 MiB shards, a cache of 64 MiB
    python bench/remote_read.py --quick     # 8 MiB in 256 KiB shards (a check that it runs)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import machine, print_table

BLOCK_SIZE = 1024
BATCH = 32


def write_entry(directory: Path, total_bytes: int, shard_bytes: int) -> None:
    """A cache entry of random uint16 ids: whole blocks per shard, as `write_token_stream` writes them."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    shard_tokens = shard_bytes // 2 // BLOCK_SIZE * BLOCK_SIZE
    shards, left = [], total_bytes // 2 // BLOCK_SIZE * BLOCK_SIZE
    while left:
        n = min(shard_tokens, left)
        name = f"tokens-{len(shards):05d}.bin"
        rng.integers(0, 50000, n, dtype=np.uint16).tofile(directory / name)
        shards.append({"file": name, "num_tokens": n})
        left -= n
    total = sum(s["num_tokens"] for s in shards)
    (directory / "meta.json").write_text(json.dumps({"num_documents": 0, "num_tokens": total, "dtype": "uint16",
                                                     "block_size": BLOCK_SIZE, "num_blocks": total // BLOCK_SIZE,
                                                     "shards": shards}))


def read_all(dataset, sampler, prefetch) -> tuple[float, int]:
    """Seconds to read every block once in the sampler's order (one epoch), prefetching the next step; and
    a checksum of the ids read (the same corpus read from both places must give the same one)."""
    start, checksum = time.perf_counter(), 0
    for step in range(sampler.steps_per_epoch):
        if prefetch:
            dataset.prefetch(sampler.step_samples(step + 1).tolist())
        for position, index in enumerate(sampler.step_samples(step).tolist()):
            checksum += (position + 1) * int(dataset[index]["input_ids"].sum())
    return time.perf_counter() - start, checksum


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the moto server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cache-dir", type=Path, help="unused (the bench writes its own corpus)")
    args = parser.parse_args()
    total, shard, cache = (8 << 20, 256 << 10, 2 << 20) if args.quick else (256 << 20, 8 << 20, 64 << 20)

    server, endpoint = start_moto()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoint)
    try:
        import s3fs

        from lmlab.data.packing import PackedBlocks
        from lmlab.data.remote import RemoteBlocks, ShardCache, ShardWindowSampler

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "corpus" / "train"
            write_entry(local, total, shard)
            fs = s3fs.S3FileSystem()
            fs.mkdir("bench")
            fs.put(str(local) + "/", "bench/corpus/train/", recursive=True)

            remote = RemoteBlocks(ShardCache("s3://bench/corpus", Path(tmp) / "shards", cache), "train")
            tokens = len(remote) * BLOCK_SIZE
            order = ShardWindowSampler(remote, BATCH)  # the same order for both: shards a window at a time
            reads = {"s3 (moto, 127.0.0.1)": read_all(remote, order, prefetch=True),
                     "local disk (memory-mapped)": read_all(PackedBlocks(local), order, prefetch=False)}
            seconds = {name: s for name, (s, _) in reads.items()}
    finally:
        server.terminate()
        server.wait(timeout=30)

    rows = [[name, f"{tokens / s / 1e6:.1f}M", f"{s:.2f}"] for name, s in seconds.items()]
    print_table(f"Reading {tokens / 1e6:.0f}M tokens ({total >> 20} MiB in {shard >> 10} KiB shards, cache "
                f"{cache >> 20} MiB) - {machine()}", ["source", "tokens/s", "seconds"], rows)
    ratio = seconds["local disk (memory-mapped)"] / seconds["s3 (moto, 127.0.0.1)"]
    line = f"S3 (moto on 127.0.0.1) reads at {ratio:.2f}x the local-disk rate"
    print(line)
    if args.json:
        args.json.write_text(json.dumps({"readme_line": line, "tokens": tokens, "seconds": seconds,
                                         "checksums": {name: c for name, (_, c) in reads.items()}}, indent=2))


if __name__ == "__main__":
    main()
