"""μP (Maximal Update Parametrisation; Yang et al. 2022, Tensor Programs V) for GPT-2 and Llama models, so that
hyperparameters tuned at `model.mup_base_width` transfer to wider models.

With m = width / base_width, for Adam (the practitioners' form of Cerebras' guide and EleutherAI's nanoGPT-mup):
- hidden matrices (every 2-D weight but the embeddings and the output layer) start with variance ∝ 1/fan_in
  (the config's initializer_range at the base width, its std divided by √m at width), and their learning rate is
  divided by m (`mup_param_groups`; Muon's rule differs: lmlab.optim.muon.mup_lr_divisor);
- embeddings, biases and norm gains keep their initialisation and learning rate;
- the logits are multiplied by 1/m: the final norm's output is, so the tied output layer, the fused loss
  (`lmlab.modules.losses`) and generation all see it;
- attention scores are scaled by 1/d_head instead of 1/√d_head.
At m = 1 this differs from standard parametrisation only in the attention's scale. An export is `folded`: a
standard model computing the same logits, for loaders that know nothing of μP.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from lmlab.errors import LmlabError

FAMILIES = {"gpt2": ("n_embd", "transformer.ln_f"), "llama": ("hidden_size", "model.norm")}


def _family(model: torch.nn.Module) -> str:
    family = getattr(model.config, "model_type", None)
    if family not in FAMILIES:
        raise LmlabError(f"model.mup=true: μP is implemented for GPT-2 and Llama models, not {family!r}; "
                         "set model.mup=false")
    return family


def width_multiplier(model: torch.nn.Module, base_width: int | None) -> float:
    """m = width / base_width (1 when no base width is given: the model is its own base)."""
    width = getattr(model.config, FAMILIES[_family(model)][0])
    return width / base_width if base_width else 1.0


def embedding_weights(model: torch.nn.Module) -> set[int]:
    """Ids of the embedding tables and the output layer's weight: the parameters μP leaves unscaled."""
    ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    if (head := model.get_output_embeddings()) is not None:
        ids.add(id(head.weight))
    return ids


def hidden_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    embeddings = embedding_weights(model)
    return [p for p in model.parameters() if p.ndim == 2 and id(p) not in embeddings]


def _scale_output(multiplier: float):
    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return output * multiplier
    return hook


def apply_mup(model: torch.nn.Module, spec: Mapping[str, Any]) -> float:
    """Re-initialise `model` (freshly built from its config: `build_model` refuses a pretrained one) for μP, scale
    its attention and logits; returns m."""
    family = _family(model)
    m = width_multiplier(model, spec.get("mup_base_width"))
    if getattr(model.config, "scale_attn_by_inverse_layer_idx", False):
        raise LmlabError("model.mup=true with scale_attn_by_inverse_layer_idx: μP sets the attention's scale; "
                         "set model.config.scale_attn_by_inverse_layer_idx=false")
    with torch.no_grad():
        for weight in hidden_matrices(model):
            weight.mul_(m**-0.5)
    for module in model.modules():
        if hasattr(module, "scaling") and hasattr(module, "head_dim"):  # GPT2Attention, LlamaAttention
            module.scaling = 1.0 / module.head_dim
    model.get_submodule(FAMILIES[family][1]).register_forward_hook(_scale_output(1.0 / m))
    model.config.mup_width_multiplier = m  # recorded in the config (and an export's config.json)
    return m


def mup_param_groups(model: torch.nn.Module, groups: list[dict[str, Any]], lr: float,
                     multiplier: float) -> list[dict[str, Any]]:
    """Each optimizer group split in two: its hidden matrices at lr / m, the rest at lr."""
    hidden = {id(p) for p in hidden_matrices(model)}
    split = []
    for group in groups:
        for in_hidden in (True, False):
            params = [p for p in group["params"] if (id(p) in hidden) == in_hidden]
            if params:
                split.append({**group, "params": params, "lr": lr / multiplier if in_hidden else lr})
    return split


def _query_weights(attention: torch.nn.Module) -> list[torch.Tensor]:
    """The weights (and bias) that make an attention module's queries: Llama's q_proj, GPT-2's first third of
    c_attn (a Conv1D: its columns are the outputs)."""
    if hasattr(attention, "q_proj"):
        return [p for p in (attention.q_proj.weight, attention.q_proj.bias) if p is not None]
    width = attention.embed_dim
    return [attention.c_attn.weight[:, :width], attention.c_attn.bias[:width]]


def folded(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of a μP model as a standard `transformers` model with the same logits (for an `hf/` export): the
    1/m multiplier moved into the final norm's gain (and bias), the attention's 1/d_head into the queries (times
    1/√d_head, the standard scale supplying the rest). A model without μP is returned as it is."""
    multiplier = getattr(model.config, "mup_width_multiplier", None)
    if multiplier is None:
        return model
    plain = copy.deepcopy(model)
    norm = plain.get_submodule(FAMILIES[_family(plain)][1])
    norm._forward_hooks.clear()  # the copy's own: the model trained on keeps its hook
    with torch.no_grad():
        for p in (norm.weight, getattr(norm, "bias", None)):
            if p is not None:
                p.mul_(1.0 / multiplier)
        for module in plain.modules():
            if hasattr(module, "scaling") and hasattr(module, "head_dim"):
                module.scaling = module.head_dim**-0.5
                for p in _query_weights(module):
                    p.mul_(module.head_dim**-0.5)
    del plain.config.mup_width_multiplier
    return plain

