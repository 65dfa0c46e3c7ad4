"""LoRA (the `peft` config group) for every task: wrap the model, count parameters, save and export.

`peft=lora` wraps the built model in a `peft.PeftModel`: the base weights are frozen, only the adapter
(and, for a classifier, its fresh head; for new chat tokens, their embedding rows) trains. Checkpoints
of a pretrained base hold only those parameters and their optimizer state (`trainable_state_dict`): the base
is loaded again from `model.pretrained`. A base built from a config keeps its weights in the checkpoint, since
no seed reproduces them reliably elsewhere (`lmlab-generate`, `init_from`). The `hf/` export is the merged
model, which plain transformers loads, and `hf-adapter/` the adapter in peft's format.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lmlab.errors import LmlabError, first_line

log = logging.getLogger(__name__)

# Targets per architecture (`model_type`): the attention projections (peft's own table takes q and v only).
# GPT-2's attention output `c_proj` is left out: its MLP's output projection has the same name. Architectures
# not listed fall back to peft's table.
TARGET_MODULES = {
    "gpt2": ["c_attn"],  # q, k and v in one projection
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
}


def check_peft_config(cfg) -> None:
    """`peft=...` combinations lmlab cannot train, refused before anything is built."""
    if not cfg.get("peft"):
        return
    from hydra.utils import get_class

    if get_class(cfg.task.module._target_).peft_task_type is None:
        raise LmlabError(f"peft={cfg.peft.get('_target_')} is not supported with task={cfg.get('task_name')} "
                         "(use clm, sft or classify)")
    if cfg.task.module.get("fused_loss"):
        raise LmlabError("task.module.fused_loss=true does not work with peft (the fused loss calls the network "
                         "body around the adapter wrapper); set task.module.fused_loss=false")
    if cfg.model.get("compile"):
        raise LmlabError("model.compile=true is not supported with peft; set model.compile=false")
    if not cfg.peft.get("r") or cfg.peft.r <= 0:
        raise LmlabError(f"peft.r={cfg.peft.get('r')} must be a positive rank (e.g. peft.r=8)")


def apply_peft(model, peft_cfg: Mapping[str, Any], task_type: str | None, new_token_ids: list[int] | None = None):
    """`model` wrapped by the adapter `peft_cfg` describes (a `peft.LoraConfig` node with `_target_`), for
    peft's `task_type` (the task module's `peft_task_type`)."""
    from hydra.utils import instantiate
    from peft import get_peft_model

    if task_type is None:
        raise LmlabError(f"peft: {type(model).__name__} models are not supported (task=clm, sft or classify)")
    options = {k: v for k, v in peft_cfg.items() if k != "_target_"}
    if options.get("target_modules") is None and model.config.model_type in TARGET_MODULES:
        options["target_modules"] = TARGET_MODULES[model.config.model_type]
    if new_token_ids:  # tokens the base model never saw (e.g. chat role markers): train their rows only
        options["trainable_token_indices"] = list(new_token_ids)
    config = instantiate({"_target_": peft_cfg["_target_"], **options, "task_type": task_type}, _convert_="all")
    try:
        return get_peft_model(model, config)
    except ValueError as e:
        raise LmlabError(f"peft.target_modules={options.get('target_modules')}: {first_line(e)}") from e


def is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params/trainable": trainable, "params/total": sum(p.numel() for p in model.parameters())}


def log_parameter_counts(module) -> None:
    """Print the trainable/total parameter counts and log them to every logger (at step 0)."""
    counts = parameter_counts(module.model)
    log.info("LoRA: %d trainable of %d parameters (%.2f%%)", counts["params/trainable"], counts["params/total"],
             100 * counts["params/trainable"] / counts["params/total"])
    for logger in module.loggers:
        logger.log_metrics({k: float(v) for k, v in counts.items()}, step=0)


def added_token_ids(spec: Mapping[str, Any], vocab_size: int | None) -> list[int]:
    """Ids of the tokens a pretrained model gains from the tokenizer (e.g. SFT's chat role markers)."""
    if not spec.get("pretrained") or not vocab_size:
        return []
    from transformers import AutoConfig

    base_vocab = AutoConfig.from_pretrained(str(spec["pretrained"])).vocab_size
    return list(range(base_vocab, vocab_size))


def merged(model):
    """A plain transformers model: the adapter merged into a copy of the base (the training model is kept)."""
    return copy.deepcopy(model).merge_and_unload() if is_peft(model) else model


def save_model(model, directory: Path, vocab_size: int | None = None) -> None:
    """`save_pretrained` of the merged model (pad rows beyond `vocab_size` sliced off) into `directory`;
    a peft adapter also into `<directory>-adapter`."""
    from lmlab.models.vocab_padding import unpadded

    unpadded(merged(model), vocab_size).save_pretrained(directory)
    if is_peft(model):
        adapter_dir = directory.with_name(f"{directory.name}-adapter")
        model.save_pretrained(adapter_dir)
        log.info("Exported the LoRA adapter to %s", adapter_dir)
