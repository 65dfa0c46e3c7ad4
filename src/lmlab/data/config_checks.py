"""The `data.*` keys' checks: each key's type and range (the sources' own rules: `mixed_blocks.check_sources`)."""

from __future__ import annotations

from lmlab.utils.key_checks import KeyChecks, Select, boolean, codec, fraction, integer, one_of

DECODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")  # str.decode's `errors`

KEYS: KeyChecks = {
    "data.batch_size": (lambda v: integer(v, 1), "must be a positive integer"),
    "data.document_masking": (boolean, "must be true or false"),
    "data.eval_batch_size": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.block_size": (lambda v: integer(v, 2, (None,)), "must be an integer of at least 2 (an input and its label)"),
    "data.max_length": (lambda v: integer(v, 2, (None,)), "must be an integer of at least 2"),
    "data.vocab_size": (lambda v: integer(v, 1), "must be a positive integer"),
    "data.max_documents": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.num_workers": (lambda v: integer(v, 0), "must be a non-negative integer"),
    "data.num_proc": (lambda v: integer(v, 1, (None,)), "must be a positive number of processes (or null: all cores)"),
    "data.shard_bytes": (lambda v: integer(v, 1), "must be a positive number of bytes"),
    "data.source.validation_fraction": (fraction, "must be a fraction between 0 and 1 (e.g. 0.05)"),
    "data.source.encoding": (codec, "is not a text encoding Python knows (e.g. utf-8, latin-1)"),
    "data.source.errors": one_of(DECODE_ERRORS),
}


def problems(select: Select) -> list[str]:
    return []
