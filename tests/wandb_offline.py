"""Read back what W&B wrote offline: `run-<id>.wandb` holds protobuf `Record`s in LevelDB-log framing.

The file starts with a 7-byte header (`:W&B`, magic 0xBEE1, version 0), then 32 KiB blocks of chunks,
each with a 7-byte header (crc32, little-endian length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4); a block's
tail shorter than a header is padding. wandb 0.31 has no Python reader (its writer lives in wandb-core).
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
    """The payload of each record, chunks joined."""
    assert data[:4] == b":W&B", "not a .wandb file"
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


def _items(items) -> dict:
    # W&B writes a key either as `key` or, for keys with slashes like `val/loss`, as `nested_key` parts.
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def offline_run(path: Path) -> dict:
    """The run (id, name, group, job_type, tags), its config and its history rows, from one `.wandb` file."""
    run: dict = {"config": {}, "history": [], "summary": {}}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type, tags=list(r.tags))
            run["config"].update(_items(r.config.update))
        elif kind == "config":
            run["config"].update(_items(record.config.update))
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
    return run
