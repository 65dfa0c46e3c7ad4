"""One rule for secrets, applied wherever a config, a command line or a log line is written or shown.

A key names a secret when its last word is `token` (`hf_token`), or it contains `api_key`/`apikey`,
`password` or `secret`; a key that merely contains `token` (`tokenizer`, `pad_token_id`) holds a secret only
when its value looks like one (`hf_…`, `sk-…`, or a long mix of letters and digits). Secret values found in
the config or on the command line are also masked wherever they appear inside other strings (a path, a run
name, a log message).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
_ALWAYS_SECRET = re.compile(r"(^|[_.-])token$|api_?key|password|secret", re.IGNORECASE)
_TOKEN_KEY = re.compile(r"token", re.IGNORECASE)
_TOKEN_VALUE = re.compile(r"(hf_|sk-|ghp_|gho_|xox[abp]-)[A-Za-z0-9_-]{4,}|(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_-]{24,}")
# Secret values seen in this process (config and command line), masked in every string and log record.
_known: set[str] = set()


def is_secret(key: object, value: object) -> bool:
    """Whether `value`, held under `key`, is a secret by lmlab's one rule."""
    if value in (None, "", MASK) or isinstance(value, dict | list | bool):
        return False
    key = str(key).lstrip("+~")
    if _ALWAYS_SECRET.search(key):
        return True
    return bool(_TOKEN_KEY.search(key)) and isinstance(value, str) and bool(_TOKEN_VALUE.fullmatch(value))


def remember(values: Iterable[str]) -> None:
    """Add secret values to mask from now on in every string (`mask`) and log record (`RedactingFilter`)."""
    _known.update(v for v in values if isinstance(v, str) and len(v) >= 4)


def secrets_in(container: object, prefix: str = "") -> list[str]:
    """The secret values of a plain (resolved) config, found by key."""
    if isinstance(container, dict):
        found = []
        for key, value in container.items():
            name = f"{prefix}{key}"
            found += [str(value)] if is_secret(name, value) else secrets_in(value, f"{name}.")
        return found
    if isinstance(container, list):
        return [s for value in container for s in secrets_in(value, prefix)]
    return []


def secrets_in_overrides(overrides: Iterable[str]) -> list[str]:
    """The secret values of command-line overrides (`+hf_token=…`)."""
    pairs = (o.partition("=") for o in overrides)
    return [value for key, _, value in pairs if is_secret(key, value)]


def mask(text: str) -> str:
    """`text` with every known secret value replaced by `***`."""
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact(container: object) -> object:
    """A plain copy of a config with secret values (by key, or known) replaced by `***`."""
    if isinstance(container, dict):
        return {k: MASK if is_secret(k, v) else redact(v) for k, v in container.items()}
    if isinstance(container, list):
        return [redact(v) for v in container]
    return mask(container) if isinstance(container, str) else container


def redact_overrides(overrides: Iterable[str]) -> list[str]:
    """Command-line overrides with secret values replaced by `***` (`+hf_token=***`)."""
    redacted = []
    for override in overrides:
        key, sep, value = override.partition("=")
        redacted.append(f"{key}{sep}{MASK}" if sep and is_secret(key, value) else mask(override))
    return redacted


def redact_override_dirname(override_dirname: str) -> str:
    """Hydra's `k=v,k=v` override string with secret values replaced by `***`."""
    from lmlab.config_keys import split_override_dirname

    return ",".join(redact_overrides(split_override_dirname(override_dirname)))


class RedactingFilter(logging.Filter):
    """Masks known secrets in every record that passes through a handler (console and train.log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _known:
            message = record.getMessage()
            masked = mask(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


def redact_logging() -> None:
    """Install `RedactingFilter` on every handler of the root logger (Hydra's console and file handlers)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class MaskingStream:
    """A console stream (sys.stdout, sys.stderr) that masks known secrets in all it is given: Hydra writes its
    "Error executing job with overrides: [...]" line and its multirun launch lines past lmlab's log filter."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask(text) if _known and isinstance(text, str) else text)
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def mask_console(argv: list[str]) -> None:
    """Remember the secrets of a command line and mask them in everything printed to stdout and stderr."""
    import sys

    remember(secrets_in_overrides(argv))
    for name in ("stdout", "stderr"):
        if not isinstance(getattr(sys, name), MaskingStream):
            setattr(sys, name, MaskingStream(getattr(sys, name)))
