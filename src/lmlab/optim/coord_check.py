"""The coordinate check of Tensor Programs V: the mean |activation| of each layer after a few Adam steps, across
widths. Under μP it stays flat as the model widens; under standard parametrisation the logits grow with width.
`bench/mup_coord_check.py` draws it; `tests/unit/models/test_mup.py` checks it."""

from __future__ import annotations

from typing import Any

import torch

from lmlab.models.build import build_model
from lmlab.models.mup import mup_param_groups

VOCAB = 256
ACTIVATIONS = ("embeddings", "attention", "mlp", "logits")


def tiny_spec(family: str, width: int, mup: bool, base_width: int, layers: int = 2, bias: bool = True
              ) -> dict[str, Any]:
    """A model node (as conf/model's) of `layers` blocks `width` wide with 4 heads, for the check; `bias`:
    GPT-2's biases (model.bias)."""
    if family == "gpt2":
        config = {"_target_": "transformers.GPT2Config", "n_layer": layers, "n_head": 4, "n_embd": width,
                  "n_positions": 64, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    else:
        config = {"_target_": "transformers.LlamaConfig", "num_hidden_layers": layers, "num_attention_heads": 4,
                  "num_key_value_heads": 4, "hidden_size": width, "intermediate_size": 4 * width,
                  "max_position_embeddings": 64, "tie_word_embeddings": True}
    return {"config": config, "mup": mup, "mup_base_width": base_width, "pad_vocab_multiple": None, "bias": bias}


def _blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    return list(model.transformer.h if hasattr(model, "transformer") else model.model.layers)


def mean_activations(model: torch.nn.Module, input_ids: torch.Tensor) -> dict[str, float]:
    """Mean |x| of the embeddings, each block's attention and MLP outputs, and the logits, on one forward."""
    found: dict[str, float] = {}

    def record(name: str):
        def hook(module, args, output):
            found[name] = (output[0] if isinstance(output, tuple) else output).abs().mean().item()
        return hook

    handles = [model.get_input_embeddings().register_forward_hook(record("embeddings"))]
    for i, block in enumerate(_blocks(model)):
        attention = block.attn if hasattr(block, "attn") else block.self_attn
        handles += [attention.register_forward_hook(record(f"attention.{i}")),
                    block.mlp.register_forward_hook(record(f"mlp.{i}"))]
    with torch.no_grad():
        found["logits"] = model(input_ids=input_ids).logits.abs().mean().item()
    for handle in handles:
        handle.remove()
    return found


def coordinate_check(family: str, widths: list[int], mup: bool, base_width: int = 64, steps: int = 5,
                     lr: float = 1e-2, seed: int = 0, bias: bool = True, batch_shape: tuple[int, int] = (8, 64),
                     optimizer: str = "adamw") -> dict[int, dict[str, float]]:
    """Per width: the mean |activation| of each layer after `steps` steps at `lr` on one fixed batch of random
    tokens (`batch_shape`: sequences × length); `optimizer`: adamw, or muon (optimizer=muon's split and its μP
    rule, lmlab.optim.muon)."""
    from transformers import AutoModelForCausalLM

    batch = torch.randint(0, VOCAB, batch_shape, generator=torch.Generator().manual_seed(seed))
    results = {}
    for width in widths:
        torch.manual_seed(seed)
        model = build_model(tiny_spec(family, width, mup, base_width, bias=bias), AutoModelForCausalLM,
                            vocab_size=VOCAB)
        step = make_optimizer(model, optimizer, lr, mup)
        for _ in range(steps):
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            step.step()
            step.zero_grad()
        results[width] = mean_activations(model, batch)
    return results


def make_optimizer(model: torch.nn.Module, name: str, lr: float, mup: bool) -> torch.optim.Optimizer:
    """AdamW or optimizer=muon (betas 0.9, 0.95, no weight decay) with μP's groups when `mup`."""
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    if name == "adamw":
        if mup:
            groups = mup_param_groups(model, groups, lr, model.config.mup_width_multiplier)
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    from lmlab.optim.muon import MuonWithAdamW, muon_groups, mup_lr_divisor  # optim/ is right of models/

    if mup:
        groups = mup_param_groups(model, groups, lr, mup_lr_divisor(model.config.mup_width_multiplier,
                                                                    "match_rms_adamw"))
    return MuonWithAdamW(muon_groups(model, groups), lr=lr, betas=(0.9, 0.95))
