"""The `data.*` keys' checks: each key's type and range, a mixture's sources' (`data.sources.<name>.`) as a single
source's (the sources' own rules: `mixed_blocks.check_sources`)."""

from __future__ import annotations

from lmlab.utils.key_checks import (
    KeyChecks,
    Select,
    boolean,
    codec,
    fraction,
    integer,
    non_negative_number,
    one_of,
    positive_number,
)

DECODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")  # str.decode's `errors`
CONVERSIONS = ("none", "partial", "object", "all")  # Hydra's `_convert_`

# A data source's keys (`data.source.<key>`, and each mixture source's `data.sources.<name>.source.<key>`).
SOURCE_KEYS: KeyChecks = {
    "validation_fraction": (fraction, "must be a fraction between 0 and 1 (e.g. 0.05)"),
    "encoding": (codec, "is not a text encoding Python knows (e.g. utf-8, latin-1)"),
    "errors": one_of(DECODE_ERRORS),
    "max_chars": (lambda v: integer(v, 1, (None,)), "must be a positive number of characters (or null)"),
    "min_length": (lambda v: integer(v, 1), "must be a positive integer"),
    "max_length": (lambda v: integer(v, 1), "must be a positive integer"),
    "seed": (lambda v: integer(v, 0), "must be a non-negative integer"),
    "streaming": (boolean, "must be true or false"),
    "train_examples": (lambda v: integer(v, 1), "must be a positive number of examples"),
    "validation_examples": (lambda v: integer(v, 1), "must be a positive number of examples"),
}

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
    "data._convert_": one_of(CONVERSIONS),
    "data.packing": (boolean, "must be true or false"),
    "data.generation_examples": (lambda v: integer(v, 0), "must be a non-negative integer"),
    "data.max_prompt_length": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.tokenizer_train_chars": (lambda v: integer(v, 1, (None,)), "must be a positive number of characters"),
    "data.samples_per_epoch": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.cache_bytes": (lambda v: integer(v, 1), "must be a positive number of bytes"),
    "data.shuffle_window": (lambda v: integer(v, 1), "must be a positive number of shards"),
    "data.retries": (lambda v: integer(v, 0), "must be a non-negative integer"),
    "data.backoff_s": (non_negative_number, "must be a non-negative number of seconds"),
    "data.sources.*.weight": (positive_number, "must be a positive number"),
    **{f"data.source.{key}": check for key, check in SOURCE_KEYS.items()},
    **{f"data.sources.*.source.{key}": check for key, check in SOURCE_KEYS.items()},
}


def problems(select: Select) -> list[str]:
    return []
