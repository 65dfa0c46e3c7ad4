"""`model.fp8=true`: the linear layers of the transformer blocks train in FP8 with torchao's float8 training
(`convert_to_float8_training`), the matrix products in float8 e4m3 with a scale computed from each tensor as
it is cast (dynamic scaling); `model.fp8_recipe` picks torchao's recipe (`tensorwise`, one scale per tensor;
`rowwise`, one per row, more accurate for outliers, slower). Weights, gradients and optimizer state stay in
their own dtype, so checkpoints have the same keys and dtypes as without FP8 and load anywhere.

Left out: the output head (its logits decide the loss; FP8 there costs accuracy for little time) and layers
whose dimensions are not multiples of 16 (FP8 matrix products need them). Only `torch.nn.Linear` layers are
converted: GPT-2's `Conv1D` layers are not, so `model.fp8` is for Llama-style models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmlab.errors import LmlabError

FP8_CAPABILITY = (8, 9)  # Ada Lovelace and Hopper (H100, H200) onwards


def check_fp8_config(model: Mapping[str, Any], accelerator: str, peft: bool = False) -> None:
    """Refuse `model.fp8=true` where no FP8 matrix product can run: a CPU, or a GPU older than Ada/Hopper."""
    if not model.get("fp8"):
        return
    if peft:
        raise LmlabError("model.fp8=true is not supported with peft (LoRA trains few parameters in bf16 anyway); "
                         "set model.fp8=false")
    if accelerator == "cpu" or not torch.cuda.is_available():
        raise LmlabError("model.fp8=true needs a GPU with FP8 matrix products (compute capability 8.9+, e.g. H100); "
                         "this machine has none (trainer.accelerator=" f"{accelerator}); set model.fp8=false")
    if (capability := torch.cuda.get_device_capability()) < FP8_CAPABILITY:
        name = torch.cuda.get_device_name()
        raise LmlabError(f"model.fp8=true needs compute capability 8.9+ (H100, L4, RTX 4090); {name} has "
                         f"{capability[0]}.{capability[1]}; set model.fp8=false")
    try:
        import torchao.float8  # noqa: F401
    except ImportError as e:
        raise LmlabError("model.fp8=true needs torchao (pip install torchao)") from e


def fp8_eligible(module: torch.nn.Module, head: torch.nn.Module | None = None) -> bool:
    """A plain linear layer of the body whose in and out dimensions are multiples of 16."""
    return (type(module) is torch.nn.Linear and module is not head
            and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def convert_to_fp8(model: torch.nn.Module, recipe: str = "tensorwise") -> list[str]:
    """Swap the eligible linear layers for torchao's `Float8Linear` in place; returns their names."""
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = [name for name, module in model.named_modules() if fp8_eligible(module, head)]
    if not names:
        raise LmlabError(f"model.fp8=true: {type(model).__name__} has no linear layer that can run in FP8 "
                         "(torch.nn.Linear, dimensions multiples of 16; GPT-2's Conv1D layers are not); "
                         "set model.fp8=false")
    convert_to_float8_training(model, config=Float8LinearConfig.from_recipe_name(recipe),
                               module_filter_fn=lambda module, _name: fp8_eligible(module, head))
    return names


def to_plain_linear(model: torch.nn.Module) -> int:
    """Swap every `Float8Linear` back for a `torch.nn.Linear` holding the same parameters (an export loads
    anywhere, in its trained dtype); returns how many were swapped."""
    from torchao.float8.float8_linear import Float8Linear

    swapped = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, Float8Linear):
                plain = torch.nn.Linear(child.in_features, child.out_features, bias=child.bias is not None,
                                        device="meta")
                plain.weight, plain.bias = child.weight, child.bias
                setattr(parent, name, plain)
                swapped += 1
    return swapped
