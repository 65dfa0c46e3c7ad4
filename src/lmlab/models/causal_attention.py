"""Plain causal blocks keep SDPA's `is_causal=True` (FlashAttention) under `torch.compile` too.

Eager, transformers drops the causal mask when it can (no padding, no packed sequences, queries = keys) and
calls SDPA with `is_causal=True`, which dispatches to FlashAttention. While dynamo traces, it cannot look at
tensor values, so it assumes the worst: the position ids might hold several packed sequences, and the mask
is materialised ((batch, 1, T, T) booleans, `is_causal=False`), so SDPA falls back to a masked kernel, about
twice as slow (docs/performance.md).

lmlab knows what transformers cannot see: a model that `CausalLMModule` trains is only ever called on
whole packed blocks, with neither an attention mask nor position ids. `declare_plain_causal(model)` records
that for the model's config, and the "sdpa" mask function registered here (transformers'
`AttentionMaskInterface`) returns no mask for such a call: no padding mask given, as many queries as keys.
Every other call (generation passes an attention mask; other models) goes to transformers' `sdpa_mask`.
"""

from __future__ import annotations

from typing import Any

import torch

_PLAIN_CAUSAL_CONFIGS: set[int] = set()  # id() of the configs of models only fed whole, unmasked blocks


def causal_sdpa_mask(**kwargs: Any):
    """transformers' `sdpa_mask`, but None (SDPA's `is_causal`) for a declared model's unmasked full block."""
    from transformers.masking_utils import sdpa_mask

    if (id(kwargs.get("config")) in _PLAIN_CAUSAL_CONFIGS and kwargs.get("attention_mask") is None
            and kwargs.get("q_length") == kwargs.get("kv_length") and kwargs.get("local_size") is None):
        return None
    return sdpa_mask(**kwargs)


def declare_plain_causal(model: torch.nn.Module) -> None:
    """Calls of `model` without an attention mask are whole causal blocks (no padding, no packing)."""
    from transformers import AttentionMaskInterface

    AttentionMaskInterface.register("sdpa", causal_sdpa_mask)
    _PLAIN_CAUSAL_CONFIGS.add(id(model.config))
