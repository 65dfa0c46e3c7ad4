"""torch.distributed.checkpoint's private names that lmlab uses.

- `load_whole`: DCP's own loader with its "load everything" planner and no process group, as
  `torch.distributed.checkpoint.format_utils.dcp_to_torch_save` does, but returning the dict instead of
  writing it (lmlab.parallel.sharded_checkpoint).
"""

from __future__ import annotations

from typing import Any

CHECKED_VERSION = "2.13.0"


def load_whole(reader: Any) -> dict[str, Any]:
    """Every tensor and object of a DCP checkpoint, whole, in this process's memory."""
    from torch.distributed.checkpoint.format_utils import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    state: dict[str, Any] = {}
    _load_state_dict(state, storage_reader=reader, planner=_EmptyStateDictLoadPlanner(), no_dist=True)
    return state
