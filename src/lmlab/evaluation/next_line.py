"""The examples of the embedded task `lmlab_next_line` (tasks/lmlab_next_line/), built from the default
corpus's validation split: the same on every run of one Python version, built once per process."""

from __future__ import annotations

import functools
import random

NUM_EXAMPLES = 1000
CONTEXT_LINES = 8
NUM_CHOICES = 4
SEED = 0


def candidate_lines(text: str) -> list[str]:
    """Lines worth predicting: not blank, not a lone bracket or keyword, not too long for a tiny model's window."""
    return [line.rstrip() for line in text.splitlines() if len(line.strip()) >= 12 and len(line) <= 100]


def examples(documents: list[str]) -> list[dict]:
    """{context, choices, label} rows: a line and the 8 before it in one file, 3 distractors from other files."""
    rng = random.Random(SEED)
    lines = [candidate_lines(doc) for doc in documents]
    files = [i for i, doc in enumerate(lines) if len(doc) > CONTEXT_LINES]
    rows = []
    while len(rows) < NUM_EXAMPLES:
        f = rng.choice(files)
        file_lines = documents[f].splitlines()
        at = rng.randrange(CONTEXT_LINES, len(file_lines))
        target = file_lines[at].rstrip()
        if target not in lines[f] or target in file_lines[at - CONTEXT_LINES:at]:
            continue
        distractors: list[str] = []
        while len(distractors) < NUM_CHOICES - 1:
            other = rng.choice(files)
            line = rng.choice(lines[other])
            if other != f and line != target and line not in distractors:
                distractors.append(line)
        label = rng.randrange(NUM_CHOICES)
        choices = distractors[:label] + [target] + distractors[label:]
        rows.append({"context": "\n".join(file_lines[at - CONTEXT_LINES:at]), "choices": choices, "label": label})
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
