"""Cut documents larger than a tokenizer batch into pieces whose encodings concatenate to the whole's.

A byte-level pre-tokenizer (GPT-2's regex) never lets a pre-token run from a non-space character into the
whitespace after it, so the position between a non-space character and a newline is a boundary it splits on
anyway: BPE merges never cross it, and encoding the pieces gives exactly the ids of encoding the whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

# A document: its text, or its text streamed in chunks cut anywhere (a single huge file, read bit by bit).
Document = str | Iterable[str]


def cuts_at_lines(backend_tokenizer) -> bool:
    """Whether cutting before a newline that follows a non-space character keeps this tokenizer's ids:
    true for byte-level BPE with GPT-2's split regex and no normalizer (lmlab's BPE, GPT-2, RoBERTa)."""
    spec = json.loads(backend_tokenizer.to_str())
    pre = spec.get("pre_tokenizer") or {}
    return (spec.get("normalizer") is None and pre.get("type") == "ByteLevel"
            and pre.get("use_regex", True) and not pre.get("add_prefix_space", False))


def _last_cut(text: str, start: int, end: int) -> int | None:
    """The last index in (start, end] where a newline follows a non-space character."""
    i = text.rfind("\n", start + 1, end + 1)
    while i > start:
        if not text[i - 1].isspace():
            return i
        i = text.rfind("\n", start + 1, i)
    return None


def _next_cut(text: str, start: int) -> int | None:
    i = text.find("\n", start + 1)
    while i != -1:
        if not text[i - 1].isspace():
            return i
        i = text.find("\n", i + 1)
    return None


def cut_at_lines(text: str, max_chars: int) -> list[str]:
    """`text` cut before newlines into pieces of at most `max_chars` where a cut allows it (a stretch with
    no newline after a non-space character stays whole). The pieces join to `text`."""
    pieces, start = [], 0
    while len(text) - start > max_chars:
        cut = _last_cut(text, start, start + max_chars) or _next_cut(text, start + max_chars)
        if cut is None:
            break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def document_pieces(document: Document, max_chars: int, cuttable: bool) -> Iterator[str]:
    """The pieces to encode for one document: itself when small; cut at lines when `cuttable`; its
    chunks joined into one text when not (the tokenizer needs the whole then)."""
    if isinstance(document, str) and (len(document) <= max_chars or not cuttable):
        yield document
        return
    chunks = [document] if isinstance(document, str) else document
    if not cuttable:
        yield "".join(chunks)
        return
    carry, emitted = "", False
    for chunk in chunks:
        pieces = cut_at_lines(carry + chunk, max_chars)
        carry = pieces.pop()  # its end is a chunk boundary, not a cut: it waits for the next chunk
        for piece in pieces:
            emitted = True
            yield piece
    if carry or not emitted:
        yield carry
