"""Instantiate the `callbacks` and `logger` groups: dicts of named `_target_` nodes, any may be null."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig


def instantiate_named(group: DictConfig | None) -> list:
    """One object per non-null entry with a `_target_`, in config order; a factory returning None adds nothing."""
    if not group:
        return []
    built = [instantiate(node) for node in group.values() if isinstance(node, DictConfig) and "_target_" in node]
    return [obj for obj in built if obj is not None]
