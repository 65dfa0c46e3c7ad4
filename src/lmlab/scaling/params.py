"""Parameter counts of a GPT-2 or Llama model from its config alone, without torch: what a scaling law's N is
and what an IsoFLOP ladder divides its FLOPs by.

Non-embedding parameters (Kaplan et al. 2020) leave out the token and position embeddings and an untied output
layer: at lmlab's tiny widths an 8k vocabulary's embeddings outweigh the blocks, and counting them bends the
law (Pearce & Song 2024). Total parameters (Hoffmann et al. 2022's N) add them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNTS = ("non_embedding", "total")
# How a transformers config names its architecture: its class (`_target_` in conf/model) or model_type (config.json)
GPT2 = ("transformers.GPT2Config", "gpt2")
LLAMA = ("transformers.LlamaConfig", "llama")
WIDTH_KEYS = ("n_embd", "hidden_size")  # a GPT-2's width, a Llama's: what the IsoFLOP preset's resolver sets


def architecture(config: Mapping[str, Any]) -> str:
    """"gpt2" or "llama" from a model config node (conf/model's `config`) or an export's config.json."""
    name = config.get("_target_") or config.get("model_type")
    if name in GPT2:
        return "gpt2"
    if name in LLAMA:
        return "llama"
    raise ValueError(f"model config {name!r}: parameters are counted for GPT-2 (transformers.GPT2Config) and "
                     "Llama (transformers.LlamaConfig) models; give a CSV of params,tokens,loss instead")


def non_embedding_params(config: Mapping[str, Any]) -> int:
    """The blocks' and final norm's parameters: the N that FLOPs per token scale with."""
    if architecture(config) == "gpt2":
        layers, width = int(config.get("n_layer", 12)), int(config.get("n_embd", 768))
        inner = int(config.get("n_inner") or 4 * width)
        attention = 4 * width * width + 4 * width  # c_attn (3 d² + 3 d) and c_proj (d² + d)
        mlp = 2 * width * inner + inner + width
        return layers * (attention + mlp + 4 * width) + 2 * width  # 2 LayerNorms per block, ln_f
    layers, width = int(config.get("num_hidden_layers", 32)), int(config.get("hidden_size", 4096))
    heads = int(config.get("num_attention_heads", 32))
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or width // heads)
    inner = int(config.get("intermediate_size", 11008))
    attention = 2 * width * heads * head_dim + 2 * width * kv_heads * head_dim
    if config.get("attention_bias"):
        attention += (heads + 2 * kv_heads) * head_dim + width
    mlp = 3 * width * inner + (2 * inner + width if config.get("mlp_bias") else 0)
    return layers * (attention + mlp + 2 * width) + width  # 2 RMSNorms per block, the final norm


def embedding_params(config: Mapping[str, Any], vocab_size: int) -> int:
    """Token (and GPT-2's position) embeddings, plus the output layer when it is not tied to them."""
    if architecture(config) == "gpt2":
        width = int(config.get("n_embd", 768))
        tied = config.get("tie_word_embeddings", True)
        return (vocab_size + int(config.get("n_positions", 1024))) * width + (0 if tied else vocab_size * width)
    width = int(config.get("hidden_size", 4096))
    tied = config.get("tie_word_embeddings", False)
    return vocab_size * width * (1 if tied else 2)


def count_params(config: Mapping[str, Any], vocab_size: int | None, count: str) -> int:
    """`count` ("non_embedding" or "total") parameters of the model `config` describes."""
    if count not in COUNTS:
        raise ValueError(f"parameter count {count!r}: expected one of {', '.join(COUNTS)}")
    blocks = non_embedding_params(config)
    if count == "non_embedding":
        return blocks
    if not vocab_size:
        raise ValueError("total parameters need the vocabulary size (config.json's or data.vocab_size)")
    return blocks + embedding_params(config, vocab_size)
