"""`lmlab-consolidate SHARDED OUT.ckpt`: a sharded checkpoint (a directory written by `trainer=fsdp`) as one
single-file checkpoint, gathered in this process's memory, which any strategy resumes and any tool reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmlab.errors import LmlabError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lmlab-consolidate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a sharded checkpoint: <run dir>/checkpoints/<name>.ckpt/")
    parser.add_argument("out", type=Path, help="the single-file checkpoint to write (must not exist)")
    return parser.parse_args(argv)


def consolidate(checkpoint: Path, out: Path) -> None:
    """Verify `checkpoint` against its manifest, gather it, write `out` atomically with its `.sha256`."""
    from lmlab.checkpoint.reader import read_checkpoint
    from lmlab.checkpoint.sharded import is_sharded_checkpoint

    if checkpoint.is_file():
        raise LmlabError(f"checkpoint={str(checkpoint)!r} is already a single file")
    if checkpoint.exists() and not is_sharded_checkpoint(checkpoint):
        raise LmlabError(f"checkpoint={str(checkpoint)!r} is not a sharded checkpoint")
    if out.exists():
        raise LmlabError(f"out={str(out)!r} exists: give a new file name")
    if not out.parent.is_dir():
        raise LmlabError(f"out={str(out)!r}: its directory does not exist")
    state = read_checkpoint(checkpoint, "checkpoint")  # verified file by file, else one line naming the damage

    from lmlab.checkpoint.files import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint(state, out)
    print(f"Wrote {out} (step {state['global_step']}) from {checkpoint}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        consolidate(args.checkpoint.expanduser(), args.out.expanduser())
    except LmlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
