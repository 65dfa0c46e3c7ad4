"""The predicates of config-key checks, shared by every feature's `config_checks` (no lmlab imports, no heavy ones).

A feature declares `KEYS: KeyChecks` (key → (predicate, what a good value is)) and `problems(select)` for its
cross-field rules; `lmlab.runs.validate` gathers them all into one message.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from omegaconf import OmegaConf

KeyChecks = dict[str, tuple[Callable[[object], bool], str]]
Select = Callable[[str], object]  # reads a key of the composed config (None when absent)


def integer(value: object, minimum: int, allowed: tuple = ()) -> bool:
    return value in allowed or (isinstance(value, int) and not isinstance(value, bool) and value >= minimum)


def positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def non_negative_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1


def boolean(value: object) -> bool:
    return isinstance(value, bool)


def betas(value: object) -> bool:
    values = list(value) if OmegaConf.is_list(value) or isinstance(value, list | tuple) else None
    return values is not None and len(values) == 2 and all(
        isinstance(b, int | float) and not isinstance(b, bool) and 0 <= b < 1 for b in values)


def codec(value: object) -> bool:
    try:
        codecs.lookup(str(value))
    except LookupError:
        return False
    return True


def one_of(options: tuple) -> tuple[Callable[[object], bool], str]:
    """A check that the value is one of `options`, and its message."""
    return (lambda v: v in options), f"must be one of {', '.join(map(str, options))}"
