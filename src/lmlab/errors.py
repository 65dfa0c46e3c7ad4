"""User-facing errors: one line, naming the bad key, file or value, raised before training starts."""


class LmlabError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line error
    quotes of a library's multi-line report."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
