"""The collate function of document-masked pretraining: blocks stacked, with per-document position ids."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate


def document_positions(input_ids: torch.Tensor, separator: int) -> torch.Tensor:
    """Position of each token in its document: 0 at a block's start and after every `separator` token."""
    index = torch.arange(input_ids.shape[-1], device=input_ids.device).expand_as(input_ids)
    starts = torch.zeros_like(input_ids, dtype=torch.bool)
    starts[..., 0] = True
    starts[..., 1:] = input_ids[..., :-1] == separator
    return index - torch.where(starts, index, 0).cummax(dim=-1).values


class CollateWithDocumentPositions:
    """`default_collate`, plus `position_ids` restarting after each `separator` (end-of-document) token."""

    def __init__(self, separator: int):
        self.separator = separator

    def __call__(self, samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = default_collate(samples)
        batch["position_ids"] = document_positions(batch["input_ids"], self.separator)
        return batch
