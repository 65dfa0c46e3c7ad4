"""Read back what W&B wrote offline: `run-<id>.wandb` holds protobuf `Record`s in LevelDB-log framing.

The file starts with a 7-byte header (`:W&B`, magic 0xBEE1, version 0), then 32 KiB blocks of chunks,
each with a 7-byte header (crc32, little-endian length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4); a block's
tail shorter than a header is padding. wandb 0.31 has no Python reader (its writer lives in wandb-core).
A file cut short by a kill ends with a partial chunk: it is left out.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

BLOCK_SIZE = 32 * 1024
HEADER = struct.Struct("<IHB")  # crc32, length, type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def record_payloads(data: bytes) -> Iterator[bytes]:
    """The payload of each complete record, chunks joined."""
    if data[:4] != b":W&B":
        return
    pos, pending = 7, b""
    while pos + HEADER.size <= len(data):
        space = BLOCK_SIZE - pos % BLOCK_SIZE
        if space < HEADER.size:
            pos += space
            continue
        _, length, kind = HEADER.unpack_from(data, pos)
        if length == 0 and kind == 0:  # zero padding at the end of a block
            pos += space
            continue
        if pos + HEADER.size + length > len(data):
            return  # the record being written when the process was killed
        chunk = data[pos + HEADER.size:pos + HEADER.size + length]
        pos += HEADER.size + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    records = []
    for payload in record_payloads(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def items(items) -> dict:
    """A record's items as a dict; W&B writes a key with slashes (`val/loss`) as `nested_key` parts."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def history_rows(path: Path) -> list[dict]:
    """Every history row of one offline run file."""
    return [items(r.history.item) for r in read_records(path) if r.WhichOneof("record_type") == "history"]
