"""The predicates of config-key checks, shared by every feature's `config_checks` (no lmlab imports, no heavy ones).

A feature declares `KEYS: KeyChecks` (key → (predicate, what a good value is)) and `problems(select)` for its
cross-field rules; `lmlab.runs.validate` gathers them all into one message.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from omegaconf import OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue, OmegaConfBaseException

KeyChecks = dict[str, tuple[Callable[[object], bool], str]]
_ABSENT = object()  # what `OmegaConf.select` gives for a key the config does not hold
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


def optional_boolean(value: object) -> bool:
    return value is None or isinstance(value, bool)


def probability(value: object) -> bool:
    """A probability (dropout, masking): a number in [0, 1]."""
    return non_negative_number(value) and value <= 1


def one_of(options: tuple) -> tuple[Callable[[object], bool], str]:
    """A check that the value is one of `options`, and its message."""
    return (lambda v: v in options), f"must be one of {', '.join(map(str, options))}"


def expand(checks: KeyChecks, cfg: object) -> KeyChecks:
    """`checks` with each `*` part of a key (`data.sources.*.weight`) replaced by the names `cfg` holds there.

    A feature whose keys sit under names the user chooses (a mixture's sources, a sweep's objectives) declares
    them once; a key under no name is simply not checked."""
    concrete: KeyChecks = {}
    for key, check in checks.items():
        if ".*" not in key:
            concrete[key] = check
            continue
        head, _, tail = key.partition(".*")
        node = OmegaConf.select(cfg, head, default=None, throw_on_resolution_failure=False)
        if OmegaConf.is_dict(node):
            names = [str(name) for name in node]
            concrete.update(expand({f"{head}.{name}{tail}": check for name in names}, cfg))
    return concrete


def key_problems(cfg: object, checks: KeyChecks, skip: set[str] = frozenset()) -> list[str]:
    """One `<key>=<value> <what a good value is>` line per key of `checks` whose value in `cfg` fails its check;
    keys absent from `cfg` (or in `skip`) are not checked, `*` parts are expanded (`expand`)."""
    problems = []
    for key, (check, expected) in expand(checks, cfg).items():
        if key in skip:
            continue
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
        except (MissingMandatoryValue, InterpolationToMissingValueError):
            continue  # reported as a mandatory value
        except OmegaConfBaseException as e:  # a resolver that raised: `trainer.max_steps` of a bad `scaling.params`
            problems.append(f"{key} could not be resolved: {str(e).splitlines()[0]}")
            continue
        if value is not _ABSENT and not check(value):
            problems.append(f"{key}={value!r} {expected}")
    return problems
