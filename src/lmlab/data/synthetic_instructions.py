"""A synthetic instruction set lmlab generates itself: string transformations of random letter strings.

Nothing in the repository or the standard library is instruction data, so SFT needs a task that exists
offline everywhere. `reverse abcd` → `dcba`, `upper abcd` → `ABCD`, … Each string lands in one split only
(by a hash of the string), so validation prompts are held out from training.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from lmlab.contracts import ExampleSource
from lmlab.errors import LmlabError

TRANSFORMS = {
    "reverse": lambda s: s[::-1],
    "upper": str.upper,
    "double": lambda s: "".join(c + c for c in s),
    "first": lambda s: s[0],
    "last": lambda s: s[-1],
}


def in_validation(text: str, fraction: float) -> bool:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


@dataclass
class SyntheticInstructions(ExampleSource):
    """`prompt`/`response` pairs: `<task> <letters>` → the transformed letters. Same seed, same examples."""

    tasks: list[str] = field(default_factory=lambda: ["reverse", "upper"])
    train_examples: int = 4000
    validation_examples: int = 200
    min_length: int = 3
    max_length: int = 6
    alphabet: str = "abcdefghijklmnopqrstuvwxyz"
    validation_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tasks) - set(TRANSFORMS))
        if unknown or not self.tasks:
            raise LmlabError(f"data.source.tasks={list(self.tasks)} holds unknown tasks {unknown}; "
                             f"choose from {sorted(TRANSFORMS)}")
        if not 1 <= self.min_length <= self.max_length:
            raise LmlabError(f"data.source.min_length={self.min_length}, max_length={self.max_length}: "
                             "need 1 <= min_length <= max_length")

    def examples(self, split: str) -> list[dict[str, str]]:
        if split not in ("train", "validation"):
            raise LmlabError(f"data.source: synthetic instructions have train and validation splits, not {split!r}")
        want_validation = split == "validation"
        count = self.validation_examples if want_validation else self.train_examples
        rng = random.Random(f"{self.seed}-{split}")
        rows, attempts = [], 0
        while len(rows) < count:
            attempts += 1
            if attempts > 100 * count + 1000:
                raise LmlabError(f"data.source: cannot draw {count} {split} examples from strings of "
                                 f"{self.min_length}-{self.max_length} letters of {self.alphabet!r}")
            letters = "".join(rng.choices(self.alphabet, k=rng.randint(self.min_length, self.max_length)))
            if in_validation(letters, self.validation_fraction) != want_validation:
                continue
            task = rng.choice(list(self.tasks))
            rows.append({"prompt": f"{task} {letters}", "response": TRANSFORMS[task](letters)})
        return rows

    def load(self, split: str):
        import datasets

        rows = self.examples(split)
        return datasets.Dataset.from_dict({key: [row[key] for row in rows] for key in ("prompt", "response")})

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(vars(self).items())).encode()).hexdigest()[:16]
