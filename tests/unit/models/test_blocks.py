"""The per-block unit of sharding and recomputation is found from the model, for every architecture."""

from __future__ import annotations

import pytest
import transformers
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from lmlab.models.blocks import transformer_blocks

SMALL = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 128}
ARCHITECTURES = [  # (config class, auto class, size overrides, block class names expected)
    ("GPT2Config", AutoModelForCausalLM, {"n_layer": 3, "n_embd": 32, "n_head": 2, "vocab_size": 128}, {"GPT2Block"}),
    ("LlamaConfig", AutoModelForCausalLM, {**SMALL, "num_hidden_layers": 3}, {"LlamaDecoderLayer"}),
    ("MistralConfig", AutoModelForCausalLM, {**SMALL, "num_hidden_layers": 3}, {"MistralDecoderLayer"}),
    ("Qwen2Config", AutoModelForCausalLM, {**SMALL, "num_hidden_layers": 3}, {"Qwen2DecoderLayer"}),
    ("BertConfig", AutoModelForMaskedLM, {**SMALL, "num_hidden_layers": 3}, {"BertLayer", "BertEmbeddings"}),
    ("RobertaConfig", AutoModelForMaskedLM, {**SMALL, "num_hidden_layers": 3}, {"RobertaLayer", "RobertaEmbeddings"}),
]


@pytest.mark.parametrize(("config", "auto_class", "size", "expected"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_blocks_are_found_from_the_model_without_naming_them(config, auto_class, size, expected):
    model = auto_class.from_config(getattr(transformers, config)(**size))
    blocks = transformer_blocks(model)
    assert {type(b).__name__ for b in blocks} == expected
    assert sum(not type(b).__name__.endswith("Embeddings") for b in blocks) == 3  # one per layer
