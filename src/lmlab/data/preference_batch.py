"""A batch of preference pairs as the preference objectives read it: one forward for chosen and rejected together.

Rows 0..B-1 are prompt + chosen, rows B..2B-1 prompt + rejected of the same pairs (TRL's layout), right-padded to
the batch's longest row; `labels` carry the response tokens only (prompt and padding: -100), so a row's response
log-probability is the sum over its labelled tokens. A `margin` column (reward models) and the reference's
log-probabilities (`REFERENCE_COLUMNS`, when DPO precomputed them) travel along.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lmlab.contracts import IGNORE_INDEX

# the reference's summed log-probability of each pair's chosen and rejected response (TRL's column names), added
# to a split by `PreferenceDataModule.add_reference_logps` (DPO's task.module.precompute_reference)
REFERENCE_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


def split_pairs(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) halves of a per-row tensor of a preference batch."""
    return values.chunk(2, dim=0)


class PreferenceCollator:
    """Rows of `prompt_ids`/`chosen_ids`/`rejected_ids` → `input_ids`, `attention_mask`, `labels` (2B rows)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        sequences = [(row["prompt_ids"], row[key]) for key in ("chosen_ids", "rejected_ids") for row in rows]
        width = max(len(prompt) + len(response) for prompt, response in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for i, (prompt, response) in enumerate(sequences):
            length = len(prompt) + len(response)
            input_ids[i, :length] = torch.tensor([*prompt, *response])
            labels[i, len(prompt):length] = torch.tensor(response)
            attention_mask[i, :length] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        for column in ("margin", *REFERENCE_COLUMNS):
            if rows and column in rows[0]:
                batch[column] = torch.tensor([float(row[column]) for row in rows], dtype=torch.float32)
        return batch
