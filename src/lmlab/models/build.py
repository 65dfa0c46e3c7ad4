"""Build a Hugging Face model from a `model` config node: from scratch, or pretrained by name/directory.

A `model` node (conf/model/*.yaml) has:
  config:      a transformers config with `_target_` (e.g. transformers.GPT2Config), for training from scratch
  pretrained:  a hub name or local directory; when set, `config` is ignored
  tokenizer:   the tokenizer to use (null: train one on the corpus)
  pad_vocab_multiple: round a from-config model's vocabulary up to a multiple of this (64 in every
               conf/model YAML; lmlab.models.vocab_padding); the tokenizer keeps its size. Absent (a checkpoint
               from before padding existed): no padding, so old checkpoints still load.
  bias:        false: every bias zero and frozen, a bias-free model (lmlab.models.bias); default true
  activation_checkpointing: none | full | selective (every `activation_checkpointing_every`-th block)
               recomputes blocks' activations in the backward (lmlab.models.blocks)
  mup:         true: μP relative to a model `mup_base_width` wide (GPT-2, Llama; lmlab.models.mup)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate

from lmlab.errors import LmlabError, not_loadable
from lmlab.models.bias import freeze_biases_at_zero
from lmlab.models.blocks import apply_activation_checkpointing
from lmlab.models.vocab_padding import padded_vocab_size

log = logging.getLogger(__name__)


def build_model(spec: Mapping[str, Any], auto_class, vocab_size: int | None = None,
                token_ids: Mapping[str, int | None] | None = None, **config_overrides):
    """A ready-to-train `auto_class` model (train mode, KV cache off, SDPA attention)."""
    token_ids = {k: v for k, v in (token_ids or {}).items() if v is not None}
    attn = spec.get("attn_implementation") or "sdpa"
    if spec.get("pretrained"):
        if spec.get("bias") is False:
            raise LmlabError("model.bias=false is for models built from a config: a pretrained model's biases "
                             "are trained; set model.bias=true")
        if spec.get("mup"):
            raise LmlabError("model.mup=true is for models built from a config: a pretrained model was not trained "
                             "with μP; set model.mup=false or model.pretrained=null")
        model = load_pretrained(auto_class, str(spec["pretrained"]), attn_implementation=attn, **config_overrides)
        if vocab_size and model.get_input_embeddings().num_embeddings < vocab_size:
            model.resize_token_embeddings(vocab_size)
    else:
        if not spec.get("config"):
            raise LmlabError("model: set either model.pretrained (hub name or directory) or model.config")
        config = instantiate(spec["config"], **token_ids, **config_overrides)
        if vocab_size:
            config.vocab_size = padded_vocab_size(vocab_size, spec.get("pad_vocab_multiple"))
        model = auto_class.from_config(config, attn_implementation=attn)
    if spec.get("mup"):  # before anything wraps the modules: μP re-initialises and scales them
        from lmlab.models.mup import apply_mup

        apply_mup(model, spec)
    # KV caching only serves generation; in training it costs memory and ~10% of step time.
    model.config.use_cache = False
    if spec.get("fused_activations", True):
        fuse_activations(model)
    if spec.get("bias") is False:
        freeze_biases_at_zero(model)
    apply_activation_checkpointing(model, spec.get("activation_checkpointing") or "none",
                                   int(spec.get("activation_checkpointing_every") or 2))
    return model.train()  # transformers 5 returns from_pretrained models in eval mode (dropout off)


def fuse_activations(model: torch.nn.Module) -> int:
    """Swap GPT-2's `gelu_new` (seven element-wise kernels written in Python, each with its own
    intermediate tensor) for PyTorch's one-kernel `GELU(approximate="tanh")`: the same formula, so the
    same function to float rounding, at ~20% more tokens/s on the CPU bench model. The config still
    says `gelu_new`, so exported models load anywhere. Returns how many modules were swapped."""
    from transformers.activations import NewGELUActivation

    swapped = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is NewGELUActivation:
                setattr(parent, name, torch.nn.GELU(approximate="tanh"))
                swapped += 1
    return swapped


def load_pretrained(auto_class, name_or_path: str, **kwargs):
    try:
        return auto_class.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as e:
        raise not_loadable("model.pretrained", name_or_path, e) from e


def context_length(config) -> int | None:
    """The longest sequence the model's position embeddings allow (None if unbounded)."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_seq_len"):
        if value := getattr(config, name, None):
            return int(value)
    return None


def flops_per_token(model, sequence_length: int) -> float:
    """Training FLOPs per token: 6·N for the weights plus 12·layers·width·T for attention (PaLM, App. B)."""
    config = model.config
    layers = getattr(config, "num_hidden_layers", 0) or 0
    width = getattr(config, "hidden_size", 0) or 0
    params = sum(p.numel() for p in model.parameters())
    return 6 * params + 12 * layers * width * sequence_length
