"""A small labelled data set the tests build: string labels, one rare class, words that give the class away."""

from __future__ import annotations

import csv
import random
from pathlib import Path

WORDS = {
    "sports": ["goal", "match", "team", "score", "player", "coach", "league", "win", "referee", "stadium"],
    "politics": ["vote", "election", "senate", "law", "party", "minister", "policy", "debate", "ballot", "reform"],
    "tech": ["code", "chip", "software", "cloud", "data", "network", "server", "robot", "kernel", "compiler"],
    "volcano": ["lava", "eruption", "magma", "ash", "crater"],  # the rare class
}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "it", "for", "on", "with", "as"]


def examples(counts: dict[str, int], rng: random.Random) -> list[tuple[str, str]]:
    rows = [(" ".join(rng.choice(WORDS[label] + FILLER) for _ in range(10)), label)
            for label, n in counts.items() for _ in range(n)]
    rng.shuffle(rows)
    return rows


def write_labelled_csvs(directory: Path, seed: int = 0, train_per_class: int = 40) -> Path:
    """train.csv, validation.csv and test.csv (a copy of validation) with a header row `text,label`."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    splits = {"train": {"sports": train_per_class, "politics": train_per_class, "tech": train_per_class,
                        "volcano": 4},
              "validation": {"sports": 10, "politics": 10, "tech": 10, "volcano": 2}}
    for split, counts in splits.items():
        with open(directory / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(examples(counts, rng))
    (directory / "test.csv").write_bytes((directory / "validation.csv").read_bytes())
    return directory
