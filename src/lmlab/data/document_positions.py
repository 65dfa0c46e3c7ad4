"""The collate function of document-masked pretraining: blocks stacked, with per-document position ids."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate

from lmlab.models.document_attention import document_positions


class CollateWithDocumentPositions:
    """`default_collate`, plus `position_ids` restarting after each `separator` (end-of-document) token."""

    def __init__(self, separator: int):
        self.separator = separator

    def __call__(self, samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = default_collate(samples)
        batch["position_ids"] = document_positions(batch["input_ids"], self.separator)
        return batch
