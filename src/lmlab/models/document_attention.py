"""No attention across documents inside a packed block (`data.document_masking=true`).

The data gives each block `position_ids` that restart after every end-of-document token; transformers
reads packed sequences from them and masks attention to each token's own document (as for SFT packing).
How that mask is applied depends on the attention implementation:

- `sdpa` (the default; what runs on a CPU): a dense (batch, 1, T, T) boolean mask;
- on a GPU, `use_document_attention(model, flex=True)` switches an `sdpa` model to FlexAttention through
  transformers' own flex functions, registered under `lmlab_flex` (GPT-2 is not on transformers' list of
  flex models, though its attention is plain scaled dot-product): a `BlockMask` that skips the blocks
  across documents instead of computing and masking them;
- `flash_attention_2`: transformers' varlen path (cu_seqlens from the position ids), kept as it is.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

FLEX = "lmlab_flex"


def attention_dropout(config) -> float:
    return float(getattr(config, "attn_pdrop", 0.0) or getattr(config, "attention_dropout", 0.0) or 0.0)


def use_document_attention(model: torch.nn.Module, flex: bool) -> None:
    """With `flex`, run an `sdpa` model's attention through FlexAttention (block-sparse document mask)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.integrations.flex_attention import flex_attention_forward
    from transformers.masking_utils import flex_attention_mask

    if not flex or model.config._attn_implementation != "sdpa":
        return
    if attention_dropout(model.config) > 0:
        log.warning("Document masking with attention dropout %.3g: FlexAttention has no dropout, so attention uses "
                    "SDPA with a dense mask (set the model's attention dropout to 0 for FlexAttention)",
                    attention_dropout(model.config))
        return
    AttentionInterface.register(FLEX, flex_attention_forward)
    AttentionMaskInterface.register(FLEX, flex_attention_mask)
    model.set_attn_implementation(FLEX)
