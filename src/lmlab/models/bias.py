"""`model.bias=false`: a model built from a config trains without biases, as nanoGPT's GPT-2 and Llama do.

Every bias (the linear layers' and the norms') is set to zero and frozen: the computation is a bias-free
model's (a zero added in the matrix product's epilogue costs nothing), and what goes is the bias gradients'
reductions (milliseconds of a GPT-2 124M GPU step, docs/performance.md) and their optimizer state. Parameter
names stay, so checkpoints and the `hf/` export keep GPT-2's layout and load anywhere.
"""

from __future__ import annotations

import torch


def freeze_biases_at_zero(model: torch.nn.Module) -> int:
    """Zero and freeze every parameter named `bias`; returns how many."""
    biases = [p for name, p in model.named_parameters() if name.rsplit(".", 1)[-1] == "bias"]
    with torch.no_grad():
        for bias in biases:
            bias.zero_()
            bias.requires_grad_(False)
    return len(biases)
