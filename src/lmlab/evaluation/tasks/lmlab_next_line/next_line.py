"""lm-eval's `!function` hook for the task's examples (the code lives in lmlab.evaluation.next_line)."""

from lmlab.evaluation.next_line import dataset

__all__ = ["dataset"]
