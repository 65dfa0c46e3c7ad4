"""lm-eval's keys, as `lmlab-eval` takes them and as `callbacks.downstream_eval` does: each key's type and range,
checked with every other config error, and by `HarnessSpec.check` for Python callers."""

from __future__ import annotations

from lmlab.utils.key_checks import KeyChecks, Select, fraction, integer

# The harness's keys, without their node's prefix.
HARNESS_KEYS: KeyChecks = {
    "num_fewshot": (lambda v: integer(v, 0, (None,)), "must be a non-negative integer (or null: each task's)"),
    "limit": (lambda v: v is None or integer(v, 1) or fraction(v),
              "must be a positive number of examples or a fraction below 1 (or null: all)"),
    "bootstrap_iters": (lambda v: integer(v, 0), "must be a non-negative integer (0: no standard errors)"),
    "batch_size": (lambda v: integer(v, 1), "must be a positive integer"),
}
KEYS: KeyChecks = {f"callbacks.downstream_eval.{key}": check for key, check in HARNESS_KEYS.items()}


def problems(select: Select) -> list[str]:
    return []
