"""Bits per byte: validation loss on a scale that does not depend on the tokenizer.

A token's cross-entropy depends on how much text the token covers, so `val/loss` of two vocabularies cannot
be compared; the summed nats over the UTF-8 bytes of the same text can: bpb = sum(nats) / ln 2 / sum(bytes).
Each token's byte count comes from its string in the vocabulary: a byte-level BPE (GPT-2's, lmlab's own)
writes one character per byte; a SentencePiece vocabulary writes `▁` for a space and `<0xNN>` for one byte.
Special tokens (document separators) cover no text: 0 bytes.
"""

from __future__ import annotations

import json
import math
import re

import torch

BYTE_FALLBACK = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


def is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    return decoder.get("type") == "ByteLevel"


def token_byte_lengths(tokenizer) -> torch.Tensor:
    """UTF-8 bytes of text each token id stands for (int64, one entry per id of the tokenizer)."""
    lengths = torch.zeros(len(tokenizer), dtype=torch.int64)
    special = set(tokenizer.all_special_ids)
    byte_level = is_byte_level(tokenizer)
    for token, i in tokenizer.get_vocab().items():
        if i in special or i >= len(lengths):
            continue
        if byte_level:
            lengths[i] = len(token)
        elif BYTE_FALLBACK.match(token):
            lengths[i] = 1
        else:
            lengths[i] = len(token.replace("▁", " ").encode("utf-8"))
    return lengths


def bits_per_byte(nats: torch.Tensor, num_bytes: torch.Tensor) -> torch.Tensor:
    return nats / math.log(2) / num_bytes
