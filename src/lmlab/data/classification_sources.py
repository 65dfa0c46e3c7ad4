"""Labelled-example sources for classification: a Hugging Face dataset or local files, split by split.

A source has `fingerprint() -> str` and `load(split) -> datasets.Dataset`, split being train, validation
or test; `label_names()` (optional) returns the label set the source itself declares.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.contracts import ExampleSource
from lmlab.errors import LmlabError, first_line

_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}



def _root_cause(e: BaseException) -> BaseException:
    """The innermost exception: `datasets` wraps the parser's own message in a generic one."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    return e


@dataclass
class HubSplits(ExampleSource):
    """`datasets.load_dataset(path, name, split=splits[split])`, e.g. glue/sst2 or imdb."""

    path: str
    name: str | None = None
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "validation": "validation"})

    def load(self, split: str):
        import datasets

        if split not in self.splits:
            raise LmlabError(f"data.source.splits has no {split!r} entry (has {sorted(self.splits)})")
        try:
            return datasets.load_dataset(self.path, self.name, split=self.splits[split])
        except Exception as e:  # datasets raises many types; the user needs the name and the reason
            raise LmlabError(f"data.source.path={self.path!r} (split {self.splits[split]!r}) could not be loaded: "
                             f"{first_line(e)}") from e

    def fingerprint(self) -> str:
        parts = [self.path, str(self.name)] + [self.load(s)._fingerprint for s in sorted(self.splits)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@dataclass
class LocalSplits(ExampleSource):
    """Local CSV/TSV/JSON Lines/Parquet files, one per split, under a directory `path`.

    `files` maps a split to its file name; a split mapped to null (or absent from `files`, which is null by
    default) is found as `<path>/<split>.<csv|tsv|jsonl|json|parquet>`. CSV and TSV files start with a header row.
    """

    path: str
    files: dict[str, str | None] | None = None

    def file(self, split: str) -> Path:
        directory = Path(self.path).expanduser()
        name = (self.files or {}).get(split)
        if name is None:
            if self.files is not None and split not in self.files:
                raise LmlabError(f"data.source.files has no {split!r} entry (has {sorted(self.files)})")
            found = sorted(directory.glob(f"{split}.*"), key=lambda f: f.suffix)
            found = [f for f in found if f.suffix in _BUILDERS]
            if len(found) != 1:
                what = "no" if not found else f"{len(found)} ({', '.join(f.name for f in found)})"
                raise LmlabError(f"data.source.path={self.path!r} holds {what} {split} file "
                                 f"({split}{'|'.join(sorted(_BUILDERS))}); name one with data.source.files.{split}=...")
            return found[0]
        file = directory / name
        if not file.is_file():
            raise LmlabError(f"data.source: the {split} file {str(file)!r} does not exist")
        if file.suffix not in _BUILDERS:
            raise LmlabError(f"data.source: {str(file)!r} is not one of {sorted(_BUILDERS)}")
        if file.stat().st_size == 0:  # checked with the fingerprint, before the run starts
            raise LmlabError(f"the {split} split of data.source is empty: {str(file)!r} is an empty file (0 bytes)")
        return file

    def load(self, split: str):
        import datasets

        file = self.file(split)
        # GLUE-style TSV files hold raw quotes: read them without CSV quoting (csv.QUOTE_NONE).
        options = {"delimiter": "\t", "quoting": 3} if file.suffix == ".tsv" else {}
        try:
            return datasets.load_dataset(_BUILDERS[file.suffix], data_files=str(file), split="train", **options)
        except Exception as e:
            if "corresponds to no data" in str(e):  # datasets' way of saying the file holds no rows
                raise LmlabError(f"the {split} split of data.source is empty ({str(file)!r} has no rows)") from e
            raise LmlabError(f"data.source: {str(file)!r} could not be read: {first_line(_root_cause(e))}") from e

    def fingerprint(self) -> str:
        """Names, sizes and times of the split files; a test split that is not there is left out."""
        digest = hashlib.sha256()
        for split in sorted(self.files or ("train", "validation", "test")):
            try:
                file = self.file(split)
            except LmlabError:
                if split == "test" and (self.files or {}).get(split) is None:
                    continue  # only lmlab-eval split=test needs it
                raise
            stat = file.stat()
            digest.update(f"{split}\0{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]
