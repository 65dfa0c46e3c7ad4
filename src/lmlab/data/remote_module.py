"""`RemoteDataModule`: pretraining on a tokenized corpus at a URL, uploaded by `lmlab-upload-data`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lmlab.data.cache import fingerprint
from lmlab.data.pretrain import PretrainDataModule
from lmlab.data.remote import RemoteBlocks, ShardCache, ShardWindowSampler, with_retries
from lmlab.data.sources import SPLITS
from lmlab.errors import LmlabError

TOKENIZER_DIR = "tokenizer"


def remove_dead_caches(directory: Path) -> None:
    """Shard caches of processes that ended (killed, say): each process has its own, the bound is per process."""
    for cache in directory.glob("shards-*"):
        try:
            os.kill(int(cache.name.removeprefix("shards-")), 0)
        except ProcessLookupError:
            shutil.rmtree(cache, ignore_errors=True)
        except (ValueError, PermissionError):
            pass


class RemoteDataModule(PretrainDataModule):
    """Packed blocks read from `url` (`<url>/tokenizer/`, `<url>/train/`, `<url>/validation/`) into a local
    cache of at most `cache_bytes` per process, `shuffle_window` shards shuffled together (see
    `ShardWindowSampler`). Reads run in the training process, with the next step's shards prefetched."""

    def __init__(self, url: str, cache_bytes: int = 8 << 30, shuffle_window: int = 4, retries: int = 5,
                 backoff_s: float = 1.0, **kwargs):
        if cache_bytes < 1:
            raise LmlabError(f"data.cache_bytes={cache_bytes} must be positive (bytes, e.g. 8589934592 = 8 GiB)")
        if shuffle_window < 1:
            raise LmlabError(f"data.shuffle_window={shuffle_window} must be at least 1 (shards)")
        if retries < 0 or backoff_s < 0:
            raise LmlabError(f"data.retries={retries} and data.backoff_s={backoff_s} must not be negative")
        if kwargs.get("num_workers"):
            raise LmlabError(f"data.num_workers={kwargs['num_workers']}: data=remote reads shards in the training "
                             f"process (its cache and prefetch threads); set data.num_workers=0")
        super().__init__(source=None, **kwargs)
        self.url = url.rstrip("/")
        self.cache_bytes, self.shuffle_window = cache_bytes, shuffle_window
        self.retries, self.backoff_s = retries, backoff_s
        self.local_dir = self.cache_dir / "remote" / fingerprint(url=self.url)
        self.sampler = None

    def _load_tokenizer(self):
        """The corpus's tokenizer, downloaded once next to the shard cache."""
        import fsspec
        from filelock import FileLock
        from transformers import AutoTokenizer

        target = self.local_dir / TOKENIZER_DIR
        self.local_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.local_dir / "tokenizer.lock")):
            if not target.is_dir():
                fs, root = fsspec.core.url_to_fs(f"{self.url}/{TOKENIZER_DIR}")
                partial = target.with_name(f"{TOKENIZER_DIR}.part-{os.getpid()}")
                with_retries(f"{self.url}/{TOKENIZER_DIR}", lambda: fs.get(f"{root}/", f"{partial}/", recursive=True),
                             self.retries, self.backoff_s)
                os.replace(partial, target)
        return AutoTokenizer.from_pretrained(target)

    def prepare_data(self) -> None:
        self.tokenizer  # noqa: B018 - downloaded once, before the processes set up

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        remove_dead_caches(self.local_dir)
        cache = ShardCache(self.url, self.local_dir / f"shards-{os.getpid()}", self.cache_bytes, self.retries,
                           self.backoff_s)
        for split in SPLITS:
            self.datasets[split] = blocks = RemoteBlocks(cache, split)
            if blocks.block_size != self.block_size:
                raise LmlabError(f"data.block_size={self.block_size} but {self.url}/{split} holds blocks of "
                                 f"{blocks.block_size} tokens: set data.block_size={blocks.block_size}")

    def train_sampler(self, dataset, batch_size: int) -> ShardWindowSampler:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        self.sampler = ShardWindowSampler(dataset, batch_size, self.trainer, seed, window=self.shuffle_window)
        return self.sampler

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        """While a step trains, the shards of this process's samples of the next step are fetched."""
        trainer = self.trainer
        if trainer is not None and trainer.training and self.sampler is not None:
            upcoming = self.sampler.step_samples(trainer.global_step + 1)
            self.datasets["train"].prefetch(upcoming[trainer.global_rank :: trainer.world_size].tolist())
        return batch

