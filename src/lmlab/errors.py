"""User-facing errors: one line, naming the bad key, file or value, raised before training starts."""


class LmlabError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero."""
