"""Weights & Biases: the Lightning `WandbLogger`, offline whenever the server can't be used."""

from __future__ import annotations

import logging
import netrc
import os
import socket
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def wandb_api_key() -> str | None:
    """The key wandb would use: `$WANDB_API_KEY`, else the `~/.netrc` entry written by `wandb login`."""
    if key := os.environ.get("WANDB_API_KEY"):
        return key
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        entry = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return entry[2] if entry else None


def wandb_reachable(timeout: float = 3.0) -> bool:
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    try:
        with socket.create_connection((url.hostname or "api.wandb.ai", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def should_run_offline() -> tuple[bool, str]:
    """(offline?, why). `WANDB_MODE` wins; otherwise offline without a key or without the server."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "dryrun", "disabled"):
        return True, f"WANDB_MODE={mode}"
    if mode == "online":
        return False, "WANDB_MODE=online"
    if not wandb_api_key():
        return True, "no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    if not wandb_reachable():
        return True, "the W&B server is unreachable"
    return False, "API key found and server reachable"


def wandb_logger(offline: bool | None = None, **kwargs: Any):
    """Lightning's `WandbLogger`; `offline=None` decides from the key and the network, never failing the run."""
    from lightning.pytorch.loggers import WandbLogger

    if offline is None:
        offline, why = should_run_offline()
        log.info("W&B: %s (%s)", "offline" if offline else "online", why)
    # An unreachable server otherwise blocks wandb.init for ~90 s.
    os.environ.setdefault("WANDB_INIT_TIMEOUT", "30")
    return WandbLogger(offline=offline, **kwargs)
