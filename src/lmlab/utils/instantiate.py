"""Instantiate the `callbacks` and `logger` groups: dicts of named `_target_` nodes, any may be null."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig


def instantiate_named(group: DictConfig | None) -> list:
    """One object per non-null entry with a `_target_`, in config order."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if isinstance(node, DictConfig) and "_target_" in node]
