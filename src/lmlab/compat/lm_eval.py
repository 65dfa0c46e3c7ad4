"""lm-eval's console output that users cannot act on, kept out of lmlab's console.

lm-eval records the git commit of the working directory in its results by running `git describe` with
git's stderr inherited: outside a git checkout, every evaluation prints `fatal: not a git repository`.
`quiet_git_hash` is the same probe with git's stderr discarded, installed where lm-eval's evaluator calls it
(checked against lm-eval 0.4: `lm_eval.evaluator.get_git_commit_hash`).
"""

from __future__ import annotations

import subprocess

CHECKED_VERSION = "0.4.13"


def quiet_git_hash() -> str | None:
    """The checkout's commit (`git describe --always`), None outside one; git's complaints discarded."""
    try:
        result = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def install_quiet_git_hash() -> None:
    import lm_eval.evaluator

    lm_eval.evaluator.get_git_commit_hash = quiet_git_hash
