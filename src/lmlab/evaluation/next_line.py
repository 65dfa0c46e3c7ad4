"""The examples of the embedded task `lmlab_next_line` (tasks/lmlab_next_line/), built from the default
corpus's validation split: the same on every run of one Python version, built once per process.

Each example is 4 lines of a file and 4 candidates for the line after them: the true line and three
scrambles of its own words (same indentation, same words, same length). Telling real code from a
scramble needs a model of how code reads, not a preference for short or common lines; chance is 25%.
"""

from __future__ import annotations

import functools
import random

NUM_EXAMPLES = 1000
CONTEXT_LINES = 4
NUM_CHOICES = 4
MIN_WORDS = 4
MAX_CHARS = 80  # context and candidates stay inside a small model's trained window
SEED = 0


def scrambles(line: str, rng: random.Random, count: int) -> list[str]:
    """Up to `count` distinct reorderings of the line's words, each different from the line itself."""
    indent, words = line[: len(line) - len(line.lstrip())], line.split()
    found: list[str] = []
    for _ in range(50 * count):
        order = rng.sample(words, len(words))
        candidate = indent + " ".join(order)
        if candidate != line and candidate not in found:
            found.append(candidate)
            if len(found) == count:
                break
    return found


def examples(documents: list[str]) -> list[dict]:
    """{context, choices, label} rows: a line with the lines before it in one file, and three scrambles of it."""
    rng = random.Random(SEED)
    files = [lines for lines in (doc.splitlines() for doc in documents) if len(lines) > CONTEXT_LINES]
    rows = []
    while len(rows) < NUM_EXAMPLES:
        lines = rng.choice(files)
        at = rng.randrange(CONTEXT_LINES, len(lines))
        target = lines[at].rstrip()
        context = lines[at - CONTEXT_LINES:at]
        if len(target.split()) < MIN_WORDS or max(len(line) for line in [target, *context]) > MAX_CHARS:
            continue
        if " ".join(target.split()) != target.strip():  # runs of spaces inside: a scramble would not keep them
            continue
        distractors = scrambles(target, rng, NUM_CHOICES - 1)
        if len(distractors) < NUM_CHOICES - 1:
            continue
        label = rng.randrange(NUM_CHOICES)
        rows.append({"context": "\n".join(context), "choices": distractors[:label] + [target] + distractors[label:],
                     "label": label})
    return rows


@functools.cache
def test_split():
    """The task's `test` split: lm-eval loads the task again at every evaluation, during training too."""
    import datasets

    from lmlab.data.sources import StdlibCorpus

    # a file bigger than the corpus's streaming threshold comes as chunks of text
    documents = [doc if isinstance(doc, str) else "".join(doc) for doc in StdlibCorpus().documents("validation")]
    return datasets.Dataset.from_list(examples(documents))


def dataset(**_kwargs):
    """lm-eval's `custom_dataset` hook (its metadata and dataset_kwargs are not used)."""
    import datasets

    return datasets.DatasetDict({"test": test_split()})
