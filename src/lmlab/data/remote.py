"""Packed token shards read from a URL (s3://, gs://, https://, file://) through fsspec while training.

A tokenized cache entry (`meta.json` + `tokens-NNNNN.bin`, see `packing`) uploaded by `lmlab-upload-data`
is read shard by shard into a local cache bounded in bytes: least recently used shards are evicted first,
shards are fetched ahead of the step that needs them, and a failed read is retried with exponential
backoff before one error. Credentials are the storage library's own (AWS_* variables or ~/.aws for s3fs,
gcloud's for gcsfs), never passed through lmlab's config or logs.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lmlab.data.packing import META_FILE
from lmlab.distributed import GlobalOrderSampler
from lmlab.errors import LmlabError

log = logging.getLogger(__name__)


def with_retries(what: str, read, retries: int, backoff_s: float):
    """`read()`, retried `retries` times after a failure, waiting `backoff_s`, then twice as long, …"""
    for attempt in range(retries + 1):
        try:
            return read()
        except FileNotFoundError as e:
            raise LmlabError(f"{what} does not exist: {e}") from e
        except Exception as e:  # noqa: BLE001 - the storage libraries raise their own types; a last error is raised
            if attempt == retries:
                raise LmlabError(f"reading {what} failed {retries + 1} times, the last with "
                                 f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
            wait = backoff_s * 2**attempt
            log.warning("Reading %s failed (%s); retry %d of %d in %.1fs", what, type(e).__name__, attempt + 1,
                        retries, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


class ShardCache:
    """Whole files of `url` copied into `directory`, at most `max_bytes` together (least recently used evicted)."""

    def __init__(self, url: str, directory: Path, max_bytes: int, retries: int = 5, backoff_s: float = 1.0,
                 prefetch_threads: int = 2):
        import fsspec

        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.directory = Path(directory)
        self.max_bytes, self.retries, self.backoff_s = max_bytes, retries, backoff_s
        self._sizes: OrderedDict[str, int] = OrderedDict()  # cached files, least recently used first
        self._lock = threading.RLock()
        self._room = threading.Condition(self._lock)
        self._reserved = 0  # bytes of downloads in flight
        self._fetching: dict[str, threading.Event] = {}
        self._pool = ThreadPoolExecutor(prefetch_threads, thread_name_prefix="shard-prefetch")
        shutil.rmtree(self.directory, ignore_errors=True)  # an earlier process's files: unknown recency
        self.directory.mkdir(parents=True)

    def read_text(self, name: str) -> str:
        return with_retries(f"{self.url}/{name}", lambda: self.fs.cat_file(f"{self.root}/{name}").decode(),
                            self.retries, self.backoff_s)

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def path(self, name: str, size: int) -> Path:
        """The local copy of file `name` (`size` bytes), fetched now unless cached or being prefetched."""
        while True:
            with self._lock:
                if name in self._sizes:
                    self._sizes.move_to_end(name)
                    return self.directory / name
                pending = self._fetching.get(name)
                if pending is None:
                    self._fetching[name] = threading.Event()
            if pending is None:
                self._fetch(name, size)
            else:
                pending.wait()

    def prefetch(self, files: Iterable[tuple[str, int]]) -> None:
        """Start fetching files in the background (those not cached or on their way already)."""
        for name, size in files:
            with self._lock:
                if name in self._sizes or name in self._fetching:
                    continue
                self._fetching[name] = threading.Event()
            self._pool.submit(self._fetch_quietly, name, size)

    def _fetch_quietly(self, name: str, size: int) -> None:
        with contextlib.suppress(LmlabError):  # the read that needs the file retries and reports
            self._fetch(name, size)

    def _fetch(self, name: str, size: int) -> None:
        reserved = False
        try:
            if size > self.max_bytes:
                raise LmlabError(f"{self.url}/{name} has {size} bytes, more than data.cache_bytes={self.max_bytes}: "
                                 f"raise data.cache_bytes to a few shards")
            self._reserve(size)
            reserved = True
            target = self.directory / name
            partial = target.with_name(f"{target.name}.part-{threading.get_ident()}")
            partial.parent.mkdir(parents=True, exist_ok=True)

            def download() -> None:
                self.fs.get_file(f"{self.root}/{name}", str(partial))
                if partial.stat().st_size != size:
                    raise OSError(f"got {partial.stat().st_size} bytes, expected {size}")

            with_retries(f"{self.url}/{name}", download, self.retries, self.backoff_s)
            os.replace(partial, target)
            with self._lock:
                self._sizes[name] = size
        finally:
            with self._room:
                if reserved:
                    self._reserved -= size
                self._fetching.pop(name).set()
                self._room.notify_all()

    def _reserve(self, size: int) -> None:
        """Make room for `size` bytes: evict least recently used files; files on their way count as present."""
        with self._room:
            while sum(self._sizes.values()) + self._reserved + size > self.max_bytes:
                if self._sizes:
                    name, _ = self._sizes.popitem(last=False)
                    (self.directory / name).unlink(missing_ok=True)
                else:
                    self._room.wait()  # only downloads in flight fill the cache: wait for one to land
            self._reserved += size

    def read(self, name: str, size: int, offset: int, count: int, dtype: np.dtype) -> np.ndarray:
        """`count` items at byte `offset` of file `name`; fetched again if it was evicted meanwhile."""
        while True:
            try:
                return np.fromfile(self.path(name, size), dtype=dtype, count=count, offset=offset)
            except FileNotFoundError:
                continue


class RemoteBlocks(Dataset):
    """`PackedBlocks` of `<url>/<split>`: block `i` of the stream, its shard fetched into a `ShardCache`."""

    def __init__(self, cache: ShardCache, split: str):
        self.cache = cache
        meta = json.loads(cache.read_text(f"{split}/{META_FILE}"))
        self.block_size, self.num_blocks = int(meta["block_size"]), int(meta["num_blocks"])
        self.dtype = np.dtype(meta["dtype"])
        self.shards = [(f"{split}/{s['file']}", int(s["num_tokens"]) * self.dtype.itemsize) for s in meta["shards"]]
        blocks_per_shard = [s["num_tokens"] // self.block_size for s in meta["shards"]]
        self.first_block = [0, *np.cumsum(blocks_per_shard).tolist()]

    def __len__(self) -> int:
        return self.num_blocks

    def shard_of(self, index: int) -> int:
        return bisect.bisect_right(self.first_block, index) - 1

    def prefetch(self, indices: Iterable[int]) -> None:
        self.cache.prefetch(self.shards[s] for s in dict.fromkeys(map(self.shard_of, indices)))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_blocks:
            raise IndexError(index)
        shard = self.shard_of(index)
        offset = (index - self.first_block[shard]) * self.block_size * self.dtype.itemsize
        block = self.cache.read(*self.shards[shard], offset, self.block_size, self.dtype).astype(np.int64)
        return {"input_ids": torch.from_numpy(block)}


class ShardWindowSampler(GlobalOrderSampler):
    """The training order of a `RemoteBlocks` dataset: shards in a random order, taken `window` at a time,
    the blocks of each window shuffled together. A step then needs at most `window` shards (those the
    cache must hold), and the order is still a function of (seed, step) (exact and elastic resume)."""

    def __init__(self, dataset: RemoteBlocks, batch_size: int, trainer=None, seed: int = 0, window: int = 4):
        super().__init__(dataset, batch_size, trainer, seed)
        self.window = window

    def permutation(self, generator: torch.Generator) -> torch.Tensor:
        first = self.dataset.first_block
        shards = torch.randperm(len(first) - 1, generator=generator).tolist()
        windows = []
        for start in range(0, len(shards), self.window):
            blocks = torch.cat([torch.arange(first[s], first[s + 1]) for s in shards[start:start + self.window]])
            windows.append(blocks[torch.randperm(len(blocks), generator=generator)])
        return torch.cat(windows)
