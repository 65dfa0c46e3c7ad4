"""User-facing errors: one line, naming the bad key, file or value, raised before training starts."""

import sys
from pathlib import Path
from typing import NoReturn


class LmlabError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line error
    quotes of a library's multi-line report."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def not_loadable(key: str, name_or_path: str, error: BaseException) -> LmlabError:
    """The one-line error for a model or tokenizer that `from_pretrained` could not load."""
    where = "local directory" if Path(name_or_path).exists() else "hub model (offline or unknown name)"
    return LmlabError(f"{key}={name_or_path!r} could not be loaded as a {where}: {first_line(error)}")


def one_line_error(prog: str):
    """argparse's `error` as one `error:` line, exit 2 (its usage block otherwise comes first, as lmlab's commands
    never print)."""

    def error(message: str) -> NoReturn:
        print(f"error: {message} ({prog} --help)", file=sys.stderr)
        sys.exit(2)

    return error
