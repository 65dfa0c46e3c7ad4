"""Vocabulary padding: embedding and output rows beyond the tokenizer's size, for aligned matrix products.

An output projection of 50257 rows runs on cuBLAS's unaligned fallback kernels, several times slower than
50304 rows (docs/performance.md). Models lmlab builds from a config therefore
get `model.pad_vocab_multiple` (64 in the configs) rows' alignment; the tokenizer keeps its size, so no real id ever
points at a pad row. Training pushes the pad rows' logits down (they are never targets); generation
suppresses them outright, and exports slice them off, so an `hf/` directory holds the tokenizer's size.
"""

from __future__ import annotations

import copy

import torch


def padded_vocab_size(vocab_size: int, multiple: int | None) -> int:
    """`vocab_size` rounded up to a multiple of `multiple` (unchanged for None, 0 or 1)."""
    if not multiple or multiple <= 1:
        return vocab_size
    return -(-vocab_size // multiple) * multiple


def pad_token_ids(model: torch.nn.Module, vocab_size: int) -> list[int]:
    """The ids of the model's pad rows: outputs that no token of a `vocab_size` tokenizer maps to."""
    return list(range(vocab_size, model.config.vocab_size))


def unpadded(model: torch.nn.Module, vocab_size: int | None) -> torch.nn.Module:
    """`model` itself when it has no pad rows, else a copy with them sliced off (config included).

    `resize_token_embeddings` knows every tensor with a vocabulary dimension (tied or not, an MLM
    head's bias), so the copy gives the same logits on every real id.
    """
    if not vocab_size or model.config.vocab_size <= vocab_size:
        return model
    trimmed = copy.deepcopy(model)
    trimmed.resize_token_embeddings(vocab_size, mean_resizing=False)
    return trimmed
