"""The checkpoint keys' checks: `resume` (its modes are `resume.resume_mode`'s)."""

from __future__ import annotations

from lmlab.checkpoint.resume import MODES
from lmlab.utils.key_checks import KeyChecks, Select

KEYS: KeyChecks = {
    "resume": (lambda v: str(v).lower() in MODES, "is not one of auto, force, never (true/false also work)"),
}


def problems(select: Select) -> list[str]:
    return []
