"""What data and task modules promise each other: the label that carries no loss, the batch keys."""

from __future__ import annotations

IGNORE_INDEX = -100  # the label of a token that carries no loss (prompt, padding, unmasked): Hugging Face's value
