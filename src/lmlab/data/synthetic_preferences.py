"""Preference pairs lmlab generates itself, on the synthetic instructions: the right answer chosen, a plausible
wrong one rejected, so DPO and reward models have data offline everywhere (as SFT has `SyntheticInstructions`).

A wrong answer is what a half-trained model gets wrong: another task's transformation of the same letters
(`reverse abc` → `ABC`), or the right answer one edit away (a letter dropped at either end, two neighbours
swapped). Same prompts and splits as `SyntheticInstructions` with the same settings.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from lmlab.data.synthetic_instructions import TRANSFORMS, SyntheticInstructions


def wrong_answers(task: str, letters: str) -> list[str]:
    """Every plausible wrong answer to `<task> <letters>`, in a fixed order."""
    right = TRANSFORMS[task](letters)
    candidates = [TRANSFORMS[other](letters) for other in sorted(TRANSFORMS) if other != task]
    candidates += [right[1:], right[:-1]] + [right[:i] + right[i + 1] + right[i] + right[i + 2:]
                                             for i in range(len(right) - 1)]
    return sorted({c for c in candidates if c and c != right})


@dataclass
class SyntheticPreferences(SyntheticInstructions):
    """`prompt`/`chosen`/`rejected`: `<task> <letters>`, its transformation, a plausible wrong one. Same seed, same
    pairs."""

    def load(self, split: str):
        import datasets

        rows = self.examples(split)
        rng = random.Random(f"{self.seed}-{split}-rejected")
        rejected = []
        for row in rows:
            task, letters = row["prompt"].split(" ", 1)
            rejected.append(rng.choice(wrong_answers(task, letters)))
        return datasets.Dataset.from_dict({"prompt": [r["prompt"] for r in rows],
                                           "chosen": [r["response"] for r in rows], "rejected": rejected})

    def fingerprint(self) -> str:
        return hashlib.sha256(f"preferences-{super().fingerprint()}".encode()).hexdigest()[:16]
