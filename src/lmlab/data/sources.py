"""Text sources for pretraining. Each yields documents per split and a cheap fingerprint of its content.

A source is anything with `fingerprint() -> str` and `documents(split) -> Iterator[Document]`, where split
is "train" or "validation" and a document is a string or, for a file too big to hold, an iterator of its
text in chunks. Splits are deterministic, so every run (and every DDP process) sees the same. An optional
`size_hint(split)` (about the characters of a split) gives the progress display its ETA.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
import itertools
import sys
import sysconfig
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from lmlab.contracts import TextSource
from lmlab.data.cutting import Document
from lmlab.errors import LmlabError, first_line

SPLITS = ("train", "validation")
STREAM_BYTES = 16 << 20


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _in_validation(key: str, fraction: float) -> bool:
    """Stable per-file split: the same file lands in the same split on every machine."""
    return zlib.crc32(key.encode()) % 10_000 < fraction * 10_000


def _files_fingerprint(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _read(path: Path) -> str:
    """A stdlib source file (a few are deliberately not UTF-8: read with replacement characters)."""
    return path.read_text(encoding="utf-8", errors="replace")


def check_text_file(path: Path, encoding: str, errors: str, chunk_bytes: int = 1 << 24) -> bool:
    """Decode a user's text file chunk by chunk (memory bounded whatever its size); True if it holds any text.

    With `errors="strict"`, undecodable bytes or a NUL (binary data) are an error naming the file and the
    byte offset, instead of training on replacement characters.
    """
    decoder, offset, has_text = codecs.getincrementaldecoder(encoding)(errors), 0, False
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            if errors == "strict" and (nul := chunk.find(b"\0")) >= 0:
                raise LmlabError(f"data.source: {str(path)!r} holds a NUL byte at byte offset {offset + nul}: binary "
                                 "data, not text (pass data.source.errors=replace to read it anyway)")
            try:
                has_text = bool(decoder.decode(chunk).strip()) or has_text
            except UnicodeDecodeError as e:
                raise LmlabError(f"data.source: {str(path)!r} is not valid {encoding} text at byte offset "
                                 f"{offset + e.start} ({e.reason}); set data.source.encoding= (e.g. latin-1) or "
                                 "data.source.errors=replace") from None
            offset += len(chunk)
    return has_text


def _decoded_chunks(path: Path, encoding: str, errors: str, start: int = 0, stop: int | None = None,
                    chunk_bytes: int = 1 << 16) -> Iterator[str]:
    """Bytes `start:stop` of a text file, decoded chunk by chunk with newlines translated as text mode reads
    them ("\r\n" and "\r" become "\n"): a file of any size read with memory bounded by the chunk."""
    decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder(encoding)(errors), translate=True)
    with open(path, "rb") as f:
        f.seek(start)
        left = None if stop is None else stop - start
        while left is None or left > 0:
            data = f.read(chunk_bytes if left is None else min(chunk_bytes, left))
            if not data:
                break
            left = None if left is None else left - len(data)
            if text := decoder.decode(data):
                yield text
    if text := decoder.decode(b"", final=True):
        yield text


def _newline_is_one_byte(encoding: str) -> bool:
    """Whether the encoding is ASCII-compatible at line ends (UTF-8, Latin-1…; not UTF-16): b"\n" ends a line."""
    try:
        return "\n\r".encode(encoding) == b"\n\r" and codecs.lookup(encoding).name not in (
            "utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
    except (LookupError, UnicodeError):
        return False


def _train_lines(num_lines: int, fraction: float) -> int:
    """How many of a single file's lines are its train split: all but the last `fraction` (at least one)."""
    return num_lines - max(1, int(num_lines * fraction))


def _last_lines_offset(path: Path, fraction: float, chunk_bytes: int = 1 << 22) -> int:
    """The byte offset where a file's last `fraction` of lines (at least one) begins: one binary pass that
    counts b"\n", then one chunk read again to find the line's start. Lines end at "\n" (or the file's end)."""
    counts, total, last = [], 0, b""
    with open(path, "rb") as f:
        while data := f.read(chunk_bytes):
            total += data.count(b"\n")
            counts.append(total)
            last = data[-1:]
        num_lines = total + (1 if last not in (b"", b"\n") else 0)
        keep = _train_lines(num_lines, fraction)
        if keep <= 0:
            return 0
        index = next(i for i, count in enumerate(counts) if count >= keep)
        f.seek(index * chunk_bytes)
        data = f.read(chunk_bytes)
    before = counts[index - 1] if index else 0
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    return index * chunk_bytes + int(ends[keep - before - 1]) + 1


def _lines_in_chunks(path: Path, encoding: str, errors: str, start: int, stop: int | None,
                     chunk_chars: int = 1 << 20) -> Iterator[str]:
    """Lines `start:stop` of a text file, joined into chunks of about `chunk_chars` (encodings whose
    newline is not one byte, such as UTF-16, where `_last_lines_offset` cannot count lines)."""
    with open(path, encoding=encoding, errors=errors) as f:
        chunk, size = [], 0
        for line in itertools.islice(f, start, stop):
            chunk.append(line)
            size += len(line)
            if size >= chunk_chars:
                yield "".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield "".join(chunk)


def _split_of_one_file(path: Path, split: str, fraction: float, encoding: str, errors: str) -> Iterator[str]:
    """A single file's train split (its lines but the last `fraction`) or validation split (those), streamed."""
    if _newline_is_one_byte(encoding):
        cut = _last_lines_offset(path, fraction)
        return _decoded_chunks(path, encoding, errors, *((0, cut) if split == "train" else (cut, None)))
    with open(path, encoding=encoding, errors=errors) as f:
        num_lines = sum(1 for _ in f)
    cut = _train_lines(num_lines, fraction)
    return _lines_in_chunks(path, encoding, errors, *((0, cut) if split == "train" else (cut, None)))


def _document(path: Path, encoding: str, errors: str) -> Document:
    """A file's text; one bigger than `STREAM_BYTES` as a stream of chunks (the same text, never held whole)."""
    if path.stat().st_size > STREAM_BYTES:
        return _decoded_chunks(path, encoding, errors)
    return path.read_text(encoding=encoding, errors=errors)


@dataclass
class StdlibCorpus(TextSource):
    """The running interpreter's standard-library `.py` sources: ~30 MB of real code on any machine.

    Split into train/validation by a hash of each file's path, so no file lands in both.
    """

    validation_fraction: float = 0.05

    def root(self) -> Path:
        return Path(sysconfig.get_paths()["stdlib"])

    @cached_property
    def _all_files(self) -> list[Path]:
        root = self.root()
        skip = {"site-packages", "dist-packages", "__pycache__"}
        return sorted(p for p in root.rglob("*.py") if skip.isdisjoint(p.relative_to(root).parts))

    def files(self, split: str) -> list[Path]:
        _check_split(split)
        root, want_validation = self.root(), split == "validation"
        return [p for p in self._all_files
                if _in_validation(str(p.relative_to(root)), self.validation_fraction) == want_validation]

    @cached_property
    def _fingerprint(self) -> str:
        return _files_fingerprint(self._all_files, f"stdlib:{sys.version}:{self.validation_fraction}")

    def fingerprint(self) -> str:
        return self._fingerprint

    def size_hint(self, split: str) -> int:
        return sum(p.stat().st_size for p in self.files(split))

    def more_text(self, split: str, key: str) -> str:
        return f"raise {key}.validation_fraction (now {self.validation_fraction})" if split == "validation" else \
            f"give {key} more text"

    def documents(self, split: str) -> Iterator[str]:
        for path in self.files(split):
            yield _read(path)


@dataclass
class TextFiles(TextSource):
    """Local text files by glob. Without a `validation` glob, many files (at least 1 / `validation_fraction`)
    are split by a hash of their path, at least one file to each split; fewer files are each split by lines, the
    last `validation_fraction` of every file's lines becoming the validation text (a whole file would be more
    than that share, and a per-file hash would often pick none). A single file, and any file over
    `STREAM_BYTES`, is streamed in chunks (it may be bigger than memory)."""

    train: str
    validation: str | None = None
    validation_fraction: float = 0.05
    encoding: str = "utf-8"
    errors: str = "strict"  # how undecodable bytes are handled: strict (an error), replace, ignore

    @staticmethod
    def _glob(pattern: str, key: str) -> list[Path]:
        paths = sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()), recursive=True))
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise LmlabError(f"{key}={pattern!r} matches no files")
        return paths

    def _train_paths(self) -> list[Path]:
        return self._glob(self.train, "data.source.train")

    def fingerprint(self) -> str:
        paths = self._train_paths()
        if self.validation:
            paths += self._glob(self.validation, "data.source.validation")
        # a single file is cut at its "\n" lines found in its bytes, read as a stream (once: read as lines)
        single = ":bytes-stream" if len(paths) == 1 and not self.validation else ""
        how = "" if self.validation else {"lines": ":lines-per-file", "files+1": ":first-hash-file"}.get(
            self._split_by(paths)[0], "")
        return _files_fingerprint(paths, f"files:{self.validation_fraction}:{self.encoding}:{self.errors}{single}{how}")

    def _split_by(self, paths: list[Path]) -> tuple[str, set[Path]]:
        """How several files without a `validation` glob are split, and the validation files when whole:
        "lines" (each file by lines), "files" (by path hash) or "files+1" (none hashed there: the lowest hash)."""
        if len(paths) * self.validation_fraction < 1:
            return "lines", set()
        held_out = {p for p in paths if _in_validation(p.name, self.validation_fraction)}
        if held_out and len(held_out) < len(paths):
            return "files", held_out
        ranked = sorted(paths, key=lambda p: zlib.crc32(p.name.encode()))
        return "files+1", {ranked[0]} if not held_out else set(ranked[:-1])

    def check_text(self) -> None:
        """Decode every file now, so an undecodable one or an empty corpus fails before the run starts."""
        if not any([check_text_file(path, self.encoding, self.errors) for path in self._train_paths()]):
            raise LmlabError(f"data.source.train={self.train!r} holds no text: its files are empty")
        for path in self._glob(self.validation, "data.source.validation") if self.validation else []:
            check_text_file(path, self.encoding, self.errors)

    def size_hint(self, split: str) -> int | None:
        if self.validation:
            pattern, key = (self.train, "data.source.train") if split == "train" else (
                self.validation, "data.source.validation")
            return sum(p.stat().st_size for p in self._glob(pattern, key))
        size = sum(p.stat().st_size for p in self._train_paths())
        return int(size * (self.validation_fraction if split == "validation" else 1 - self.validation_fraction))

    def documents(self, split: str) -> Iterator[Document]:
        _check_split(split)
        if self.validation:
            paths = self._train_paths() if split == "train" else self._glob(self.validation, "data.source.validation")
            for path in paths:
                yield _document(path, self.encoding, self.errors)
            return
        paths = self._train_paths()
        how, held_out = self._split_by(paths)
        for path in paths:
            if how == "lines":  # one file, or a few: each gives its last lines to validation
                yield _split_of_one_file(path, split, self.validation_fraction, self.encoding, self.errors)
            elif (path in held_out) == (split == "validation"):
                yield _document(path, self.encoding, self.errors)

    def more_text(self, split: str, key: str) -> str:
        if split == "train":
            return f"give {key}.train more text"
        if self.validation:
            return f"give {key}.validation more text"
        return (f"raise {key}.validation_fraction (now {self.validation_fraction}) or give {key}.validation="
                "'<glob>' files of its own")


@dataclass
class HubDataset(TextSource):
    """A Hugging Face dataset: `datasets.load_dataset(path, name, split=...)[text_column]`.

    `path` may also be a builder such as "text" or "parquet" with `data_files`, which works offline.
    Without a `validation_split`, a seeded `validation_fraction` of the training rows is held out.
    With `streaming`, rows are read as they are tokenized (`load_dataset(..., streaming=True)`): nothing is
    downloaded or materialised first; the content is identified by the builder's config id and hash,
    which follow the data files (local modification times, hub revisions).
    """

    path: str
    name: str | None = None
    train_split: str = "train"
    validation_split: str | None = "validation"
    validation_fraction: float = 0.05
    text_column: str = "text"
    data_files: dict[str, str] | None = None
    skip_empty: bool = True
    streaming: bool = False

    def _data_files(self) -> dict | str | None:
        """`data_files` as plain Python: a config node (Hydra's DictConfig) is read by `datasets` as a list."""
        if self.data_files is None or isinstance(self.data_files, str):
            return self.data_files
        return {k: v if isinstance(v, str) else list(v) for k, v in dict(self.data_files).items()}

    def _check_streaming(self) -> None:
        if self.streaming and not self.validation_split:
            raise LmlabError("data.source.streaming=true needs data.source.validation_split: a stream "
                             "cannot hold out a shuffled fraction of its rows")

    def _load(self, split: str):
        import datasets

        self._check_streaming()
        hf_split = self.validation_split if split == "validation" and self.validation_split else self.train_split
        try:
            dataset = datasets.load_dataset(self.path, self.name, split=hf_split, data_files=self._data_files(),
                                            streaming=self.streaming)
        except Exception as e:  # datasets raises many types; the user needs the name and the reason
            raise LmlabError(
                f"data.source.path={self.path!r} (split {hf_split!r}) could not be loaded: {first_line(e)}"
            ) from e
        if dataset.column_names is not None and self.text_column not in dataset.column_names:
            raise LmlabError(
                f"data.source.text_column={self.text_column!r} is not a column of {self.path!r}; "
                f"columns: {dataset.column_names}"
            )
        if not self.validation_split:
            held_out = dataset.train_test_split(test_size=self.validation_fraction, seed=0, shuffle=True)
            dataset = held_out["test" if split == "validation" else "train"]
        return dataset

    def fingerprint(self) -> str:
        parts = [self.path, str(self.name), self.text_column, str(self.validation_split), str(self.validation_fraction)]
        if self.streaming:  # the same rows as the materialised dataset, but no Arrow fingerprint to read
            parts += ["streaming", str(self.train_split), *self._builder_identity()]
        else:
            parts += [self._load(split)._fingerprint for split in SPLITS]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def _builder_identity(self) -> list[str]:
        import datasets

        self._check_streaming()
        try:
            builder = datasets.load_dataset_builder(self.path, self.name, data_files=self._data_files())
        except Exception as e:
            raise LmlabError(f"data.source.path={self.path!r} could not be loaded: {first_line(e)}") from e
        return [builder.config_id, str(builder.hash)]

    def documents(self, split: str) -> Iterator[str]:
        _check_split(split)
        dataset = self._load(split)
        for batch in dataset.select_columns([self.text_column]).iter(batch_size=1000):
            for text in batch[self.text_column]:
                if not isinstance(text, str):
                    kind = type(text).__name__
                    raise LmlabError(f"data.source.text_column={self.text_column!r} holds {kind} values, not text")
                if text.strip() or not self.skip_empty:
                    yield text

