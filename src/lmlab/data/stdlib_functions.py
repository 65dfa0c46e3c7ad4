"""The embedded classification task: which standard-library package does this function come from?

Function definitions are cut out of this Python's own stdlib sources with `ast`, so the task exists on
every machine, offline. Files are split, per package, in the order of a hash of their path: files go to
validation until it holds `validation_fraction` of the package's functions. So every package is in both
splits, and no file contributes to two.
"""

from __future__ import annotations

import ast
import sys
import sysconfig
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lmlab.contracts import ExampleSource
from lmlab.data.sources import _files_fingerprint
from lmlab.errors import LmlabError

PACKAGES = ["asyncio", "email", "unittest", "tkinter", "multiprocessing", "xml", "http", "logging", "importlib",
            "urllib"]
_SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__"}  # a package's own tests are not its code


@cache  # split_files counts functions and load reads them: parse each file once per process
def function_sources(path: Path, max_chars: int) -> list[str]:
    """Source text of every function and method defined in `path` (nested ones too), cut to `max_chars`."""
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a few stdlib files are templates or Python-2 fixtures
        return []
    nodes = (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return [text[:max_chars] for n in nodes if (text := ast.get_source_segment(source, n))]


@dataclass
class StdlibFunctions(ExampleSource):
    """Examples {text: function source, label: package name} for `split` in train/validation.

    `label_names()` is the package list, in order: the label ids of the task.
    """

    packages: list[str] = field(default_factory=lambda: list(PACKAGES))
    validation_fraction: float = 0.15
    max_chars: int = 2000

    def root(self) -> Path:
        return Path(sysconfig.get_paths()["stdlib"])

    def label_names(self) -> list[str]:
        return list(self.packages)

    def files(self, package: str) -> list[Path]:
        directory = self.root() / package
        if not directory.is_dir():
            raise LmlabError(f"data.source.packages: {package!r} is not a package of this Python's standard "
                             f"library ({self.root()})")
        return sorted(p for p in directory.rglob("*.py") if _SKIP_DIRS.isdisjoint(p.relative_to(directory).parts))

    def fingerprint(self) -> str:
        paths = [p for package in self.packages for p in self.files(package)]
        return _files_fingerprint(paths, f"stdlib-functions:{sys.version}:{self.packages}:{self.validation_fraction}"
                                         f":{self.max_chars}")

    def split_files(self, package: str) -> dict[str, list[Path]]:
        """The package's files per split: validation takes files (hash order) up to its share of functions."""
        files = sorted(self.files(package), key=lambda p: zlib.crc32(str(p.relative_to(self.root())).encode()))
        counts = [len(function_sources(p, self.max_chars)) for p in files]
        target, taken, validation = self.validation_fraction * sum(counts), 0, []
        for path, count in zip(files, counts, strict=True):
            if taken >= target or len(validation) == len(files) - 1:
                break
            validation.append(path)
            taken += count
        return {"validation": validation, "train": [p for p in files if p not in validation]}

    def load(self, split: str):
        """The split as a `datasets.Dataset` with columns text and label."""
        import datasets

        if split not in ("train", "validation"):
            raise LmlabError(f"the stdlib-functions task has splits train and validation, not {split!r}")
        texts, labels = [], []
        for package in self.packages:
            for path in self.split_files(package)[split]:
                functions = function_sources(path, self.max_chars)
                texts += functions
                labels += [package] * len(functions)
        return datasets.Dataset.from_dict({"text": texts, "label": labels})
