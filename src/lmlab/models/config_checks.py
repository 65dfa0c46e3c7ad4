"""The `model.*` and `peft.*` keys' checks: each key's type and range, and the sizes that must fit together."""

from __future__ import annotations

from lmlab.models.options import (
    ACTIVATION_CHECKPOINTING,
    ACTIVATIONS,
    ATTN_IMPLEMENTATIONS,
    COMPILE_MODES,
    FP8_RECIPES,
    LORA_BIASES,
)
from lmlab.utils.key_checks import KeyChecks, Select, boolean, integer, one_of, positive_number, probability

# Sizes of a model's config (GPT-2's and BERT/Llama's names): positive integers when set.
MODEL_SIZES = ("n_layer", "n_head", "n_embd", "n_positions", "n_inner", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "hidden_size", "intermediate_size", "max_position_embeddings", "vocab_size",
               "head_dim")
# Dropout probabilities of a model's config (GPT-2's, BERT's and Llama's names).
DROPOUTS = ("attn_pdrop", "embd_pdrop", "resid_pdrop", "attention_probs_dropout_prob", "hidden_dropout_prob",
            "attention_dropout")
# Switches of a model's config.
CONFIG_SWITCHES = ("attention_bias", "mlp_bias", "tie_word_embeddings")
# (width, heads) pairs of a model's config whose heads must divide the width.
HEAD_SPLITS = (("n_embd", "n_head"), ("hidden_size", "num_attention_heads"))

KEYS: KeyChecks = {
    "model.activation_checkpointing": one_of(ACTIVATION_CHECKPOINTING),
    "model.activation_checkpointing_every": (lambda v: integer(v, 1), "must be a positive integer"),
    "model.bias": (boolean, "must be true or false"),
    "model.compile": (lambda v: v in (False, True, "regional"),
                      "must be false, true (the whole step) or regional (each block; lmlab.models.compile)"),
    "model.compile_mode": one_of(COMPILE_MODES),
    "model.fp8": (boolean, "must be true or false"),
    "model.fp8_recipe": one_of(FP8_RECIPES),
    "model.fused_activations": (boolean, "must be true or false"),
    "model.mup": (boolean, "must be true or false"),
    "model.mup_base_width": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null: the width)"),
    "model.pad_vocab_multiple": (lambda v: integer(v, 0, (None,)), "must be a non-negative integer (0, 1 or null: "
                                 "no padding)"),
    "model.attn_implementation": (lambda v: v in ATTN_IMPLEMENTATIONS or (isinstance(v, str) and "/" in v),
                                  f"must be one of {', '.join(map(str, ATTN_IMPLEMENTATIONS[1:]))} (or a hub "
                                  "kernel, org/name)"),
    "model.config.hidden_act": one_of(ACTIVATIONS),
    "model.config.rms_norm_eps": (positive_number, "must be a positive number"),
    "model.config.rope_theta": (positive_number, "must be a positive number"),
    **{f"model.config.{key}": (probability, "must be a probability between 0 and 1") for key in DROPOUTS},
    **{f"model.config.{key}": (boolean, "must be true or false") for key in CONFIG_SWITCHES},
    "peft.r": (lambda v: integer(v, 1), "must be a positive rank (e.g. peft.r=8)"),
    "peft.lora_alpha": (positive_number, "must be a positive number (e.g. peft.lora_alpha=16)"),
    "peft.lora_dropout": (probability, "must be a probability between 0 and 1"),
    "peft.bias": one_of(LORA_BIASES),
    **{f"model.config.{key}": (lambda v: integer(v, 1, (None,)), "must be a positive integer") for key in MODEL_SIZES},
}


def problems(select: Select) -> list[str]:
    """Sizes of the model's config that cannot make a model together (heads that do not divide the width), and
    μP with LoRA."""
    if select("model.mup") is True and select("peft"):
        return ["model.mup=true with peft: LoRA adapts a pretrained model and μP trains one from its config; "
                "fine-tune the μP run's hf/ export (a standard model, μP folded in) with peft instead"]
    if select("model.pretrained"):
        return []
    found = []
    for width, heads in HEAD_SPLITS:
        w, h = select(f"model.config.{width}"), select(f"model.config.{heads}")
        if integer(w, 1) and integer(h, 1) and w % h:
            found.append(f"model.config.{heads}={h} must divide model.config.{width}={w} (each head gets "
                         f"{width}/{heads} dimensions)")
    kv, h = select("model.config.num_key_value_heads"), select("model.config.num_attention_heads")
    if integer(kv, 1) and integer(h, 1) and h % kv:
        found.append(f"model.config.num_key_value_heads={kv} must divide model.config.num_attention_heads={h}")
    return found
