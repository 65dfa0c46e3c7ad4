"""`lmlab-upload-data URL [OVERRIDES…]`: tokenize a corpus as `lmlab-train OVERRIDES…` would (or reuse its
cache entry) and copy it to a URL that `data=remote data.url=URL` trains from.

Written at the URL: `tokenizer/`, then `train/` and `validation/`, each shard before its `meta.json`, so an
interrupted upload is never read as a complete one (a reader finds no `meta.json`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lmlab.errors import LmlabError, first_line


def make_directory(fs, path: str) -> None:
    """A local directory to copy into (object stores have no directories; s3fs's makedirs creates buckets)."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        fs.makedirs(path, exist_ok=True)


def upload_entry(local: Path, url: str, fs, root: str) -> None:
    """Every file of a cache entry, `meta.json` last."""
    from lmlab.data.packing import META_FILE

    files = sorted(p for p in local.iterdir() if p.name != META_FILE) + [local / META_FILE]
    make_directory(fs, root)
    for path in files:
        print(f"  {url}/{path.name} ({path.stat().st_size} bytes)", flush=True)
        fs.put_file(str(path), f"{root}/{path.name}")


def upload(overrides: list[str], url: str) -> None:
    import fsspec
    import hydra
    from hydra import compose, initialize_config_dir

    from lmlab.config import config_dir, register_resolvers
    from lmlab.data import config_checks as data_checks
    from lmlab.data.pretrain import PretrainDataModule
    from lmlab.data.remote_module import TOKENIZER_DIR
    from lmlab.data.sources import SPLITS
    from lmlab.runs.validate import validate_config

    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    validate_config(cfg, data_checks.KEYS)  # a bad data key: one line naming it, before anything is built
    datamodule = hydra.utils.instantiate(cfg.data)
    if type(datamodule) is not PretrainDataModule:
        raise LmlabError(f"data={cfg.data.get('_target_')}: lmlab-upload-data uploads a single pretraining "
                         f"source (data=stdlib, files, hub, ...)")
    url = url.rstrip("/")
    fs, root = fsspec.core.url_to_fs(url)
    with tempfile.TemporaryDirectory() as tmp:
        datamodule.tokenizer.save_pretrained(tmp)
        print(f"Uploading the tokenizer to {url}/{TOKENIZER_DIR}", flush=True)
        make_directory(fs, f"{root}/{TOKENIZER_DIR}")
        for path in sorted(Path(tmp).iterdir()):
            fs.put_file(str(path), f"{root}/{TOKENIZER_DIR}/{path.name}")
    for split in SPLITS:
        entry = datamodule.packed(split)
        print(f"Uploading the {split} split ({entry}) to {url}/{split}", flush=True)
        upload_entry(entry, f"{url}/{split}", fs, f"{root}/{split}")
    print(f"Done: train with data=remote data.url={url} data.block_size={datamodule.block_size}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="lmlab-upload-data",
        description="Tokenize a corpus as lmlab-train would with the same overrides (or reuse its cache) and "
                    "copy it to URL (s3://, gs://, https:// with a writable server, file://, or a local path). "
                    "Credentials come from the storage library's usual environment and config files.")
    parser.add_argument("url", help="where to write, e.g. s3://bucket/corpora/wiki-gpt2-1024")
    parser.add_argument("overrides", nargs="*", help="lmlab-train overrides choosing the data, e.g. data=files "
                                                     "data.source.train='corpus/*.txt' data.block_size=1024")
    from lmlab.errors import one_line_error

    parser.error = one_line_error(parser.prog)  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    from hydra.errors import HydraException

    try:
        upload(args.overrides, args.url)
    except (LmlabError, OSError, HydraException) as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
