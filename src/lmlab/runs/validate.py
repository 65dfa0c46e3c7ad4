"""`validate_config`: every problem with lmlab's own keys, gathered into one message, before anything runs.

Each check names the key and its value (`trainer.max_steps='abc' must be an integer`), so a mistyped
override fails in a second with one line, instead of a traceback deep inside Lightning after the data
was prepared.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmlab.errors import LmlabError
from lmlab.optim import ADJUST_LR_FNS, MUON, MUON_KEYS

# Lightning's accepted `precision` values (lightning.fabric.connector._PRECISION_INPUT), without its import.
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "64", "32", "16", "bf16")
ACTIVATION_CHECKPOINTING = ("none", "full", "selective")  # lmlab.models.blocks
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
FP8_RECIPES = ("tensorwise", "rowwise", "rowwise_with_gw_hp")  # torchao's recipe names (lmlab.models.fp8)
DECODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")
# What lmlab trains on (Lightning also knows "tpu", which lmlab does not support).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# transformers.SchedulerType's values (`get_scheduler`'s names), without importing transformers.
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
              "warmup_stable_decay", "greedy")
# scheduler=wsd's decay and warmup shapes (lmlab.modules.wsd.SHAPES, which imports transformers)
WSD_SHAPES = ("linear", "cosine", "1-sqrt")
# lmlab.modules.preference_losses.LOSS_TYPES, without importing torch (tests/test_dpo.py keeps them equal).
PREFERENCE_LOSSES = ("sigmoid", "hinge", "ipo", "simpo")
# Sizes of a model's config (GPT-2's and BERT/Llama's names): positive integers when set.
MODEL_SIZES = ("n_layer", "n_head", "n_embd", "n_positions", "n_inner", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "hidden_size", "intermediate_size", "max_position_embeddings", "vocab_size",
               "head_dim")
# (width, heads) pairs of a model's config whose heads must divide the width.
HEAD_SPLITS = (("n_embd", "n_head"), ("hidden_size", "num_attention_heads"))
# Callback keys that count steps, epochs or validations: positive integers (or null: off).
CALLBACK_INTERVALS = ("every_n_train_steps", "every_n_epochs", "patience", "refresh_rate", "window", "max_depth")


def _int(value: object, minimum: int, allowed: tuple = ()) -> bool:
    return value in allowed or (isinstance(value, int) and not isinstance(value, bool) and value >= minimum)


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1


def _betas(value: object) -> bool:
    values = list(value) if OmegaConf.is_list(value) or isinstance(value, list | tuple) else None
    return values is not None and len(values) == 2 and all(
        isinstance(b, int | float) and not isinstance(b, bool) and 0 <= b < 1 for b in values)


def _codec(value: object) -> bool:
    try:
        codecs.lookup(str(value))
    except LookupError:
        return False
    return True


# key → (check, what a good value is); a key absent from the config is not checked.
CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "seed": (lambda v: _int(v, 0), "must be a non-negative integer"),
    "print_config": (lambda v: v is True or v is False or v == "sweep", "must be true, false or sweep"),
    "global_batch_size": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)"),
    "trainer.max_steps": (lambda v: _int(v, 1, (-1,)), "must be a positive integer (-1: no limit)"),
    "trainer.max_epochs": (lambda v: _int(v, 1, (-1, None)), "must be a positive integer (-1 or null: no limit)"),
    "trainer.log_every_n_steps": (lambda v: _int(v, 1), "must be a positive integer"),
    "trainer.accumulate_grad_batches": (lambda v: _int(v, 1), "must be a positive integer"),
    "trainer.val_check_interval": (lambda v: v is None or _positive_number(v),
                                   "must be a positive number of steps (or a fraction of an epoch)"),
    "trainer.limit_train_batches": (lambda v: v is None or _positive_number(v), "must be positive (or null)"),
    "trainer.limit_val_batches": (lambda v: v is None or _non_negative_number(v),
                                  "must be a number of batches or a fraction (or null)"),
    "trainer.gradient_clip_val": (lambda v: v is None or _non_negative_number(v),
                                  "must be a non-negative number (or null)"),
    "trainer.precision": (lambda v: str(v) in PRECISIONS, f"must be one of {', '.join(PRECISIONS[2:8])}"),
    "callbacks.downstream_eval.every_n_steps": (lambda v: _int(v, 1), "must be a positive integer"),
    "data.batch_size": (lambda v: _int(v, 1), "must be a positive integer"),
    "data.document_masking": (lambda v: isinstance(v, bool), "must be true or false"),
    "data.eval_batch_size": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.block_size": (lambda v: _int(v, 2, (None,)), "must be an integer of at least 2 (an input and its label)"),
    "data.max_length": (lambda v: _int(v, 2, (None,)), "must be an integer of at least 2"),
    "data.vocab_size": (lambda v: _int(v, 1), "must be a positive integer"),
    "data.max_documents": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)"),
    "data.num_workers": (lambda v: _int(v, 0), "must be a non-negative integer"),
    "data.num_proc": (lambda v: _int(v, 1, (None,)), "must be a positive number of processes (or null: all cores)"),
    "data.shard_bytes": (lambda v: _int(v, 1), "must be a positive number of bytes"),
    "data.source.validation_fraction": (_fraction, "must be a fraction between 0 and 1 (e.g. 0.05)"),
    "trainer.accelerator": (lambda v: v in ACCELERATORS, f"must be one of {', '.join(ACCELERATORS)}"),
    "data.source.encoding": (_codec, "is not a text encoding Python knows (e.g. utf-8, latin-1)"),
    "data.source.errors": (lambda v: v in DECODE_ERRORS, f"must be one of {', '.join(DECODE_ERRORS)}"),
    "model.activation_checkpointing": (lambda v: v in ACTIVATION_CHECKPOINTING,
                                       f"must be one of {', '.join(ACTIVATION_CHECKPOINTING)}"),
    "model.activation_checkpointing_every": (lambda v: _int(v, 1), "must be a positive integer"),
    "model.bias": (lambda v: isinstance(v, bool), "must be true or false"),
    "model.compile": (lambda v: v in (False, True, "regional"),
                      "must be false, true (the whole step) or regional (each block; lmlab.models.compile)"),
    "model.compile_mode": (lambda v: v in COMPILE_MODES, f"must be one of {', '.join(map(str, COMPILE_MODES))}"),
    "model.fp8_recipe": (lambda v: v in FP8_RECIPES, f"must be one of {', '.join(FP8_RECIPES)}"),
    "optimizer.lr": (_positive_number, "must be a positive learning rate (e.g. optimizer.lr=3e-4)"),
    "optimizer.weight_decay": (_non_negative_number, "must be a non-negative number"),
    "optimizer.betas": (_betas, "must be two numbers in [0, 1) (e.g. optimizer.betas=[0.9,0.95])"),
    "optimizer.eps": (_positive_number, "must be a positive number"),
    "optimizer.momentum": (lambda v: _non_negative_number(v) and v < 1, "must be in [0, 1) (e.g. 0.95)"),
    "optimizer.nesterov": (lambda v: isinstance(v, bool), "must be true or false"),
    "optimizer.ns_steps": (lambda v: _int(v, 1) and v < 100, "must be an integer from 1 to 99 (e.g. 5)"),
    "optimizer.adjust_lr_fn": (lambda v: v in ADJUST_LR_FNS, f"must be one of {', '.join(ADJUST_LR_FNS)}"),
    "scheduler.name": (lambda v: v in SCHEDULERS, f"must be one of {', '.join(SCHEDULERS)}"),
    "scheduler.num_warmup_steps": (lambda v: _int(v, 0), "must be a non-negative integer"),
    "task.module.loss_type": (lambda v: v in PREFERENCE_LOSSES, f"must be one of {', '.join(PREFERENCE_LOSSES)}"),
    "task.module.beta": (_positive_number, "must be a positive number (e.g. task.module.beta=0.1)"),
    "task.module.label_smoothing": (lambda v: _non_negative_number(v) and v < 0.5, "must be in [0, 0.5)"),
    "scheduler.on_budget_change": (lambda v: v in ("replan", "continue"), "must be replan or continue"),
    "scheduler.decay_fraction": (lambda v: _non_negative_number(v) and v <= 1,
                                 "must be a fraction of the run between 0 and 1 (e.g. 0.2)"),
    "scheduler.decay_type": (lambda v: v in WSD_SHAPES, f"must be one of {', '.join(WSD_SHAPES)}"),
    "scheduler.warmup_type": (lambda v: v in WSD_SHAPES, f"must be one of {', '.join(WSD_SHAPES)}"),
    **{f"model.config.{key}": (lambda v: _int(v, 1, (None,)), "must be a positive integer") for key in MODEL_SIZES},
}
# `lmlab-eval`'s keys.
EVAL_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "split": (lambda v: isinstance(v, str) and bool(v.strip()), "must be a split name (train, validation, test)"),
    "batch_size": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null: the run's)"),
    "accelerator": (lambda v: v in ACCELERATORS, f"must be one of {', '.join(ACCELERATORS)}"),
    "output_dir": (lambda v: v is None or (isinstance(v, str) and bool(v.strip())), "must be a directory (or null)"),
}


def _callback_checks(cfg: DictConfig) -> dict[str, tuple[Callable[[object], bool], str]]:
    """The interval keys of every callback the config names (`callbacks.<name>.every_n_train_steps`, ...)."""
    callbacks = OmegaConf.select(cfg, "callbacks", default=None, throw_on_resolution_failure=False)
    if not OmegaConf.is_dict(callbacks):
        return {}
    return {f"callbacks.{name}.{key}": (lambda v: _int(v, 1, (None,)), "must be a positive integer (or null)")
            for name, node in callbacks.items_ex(resolve=False) if OmegaConf.is_dict(node)
            for key in CALLBACK_INTERVALS if key in node}


def _model_problems(cfg: DictConfig) -> list[str]:
    """Sizes of the model's config that cannot make a model together (heads that do not divide the width)."""
    model = OmegaConf.select(cfg, "model.config", default=None, throw_on_resolution_failure=False)
    if not OmegaConf.is_dict(model) or OmegaConf.select(cfg, "model.pretrained", default=None,
                                                        throw_on_resolution_failure=False):
        return []
    problems = []
    for width, heads in HEAD_SPLITS:
        w, h = model.get(width), model.get(heads)
        if _int(w, 1) and _int(h, 1) and w % h:
            problems.append(f"model.config.{heads}={h} must divide model.config.{width}={w} (each head gets "
                            f"{width}/{heads} dimensions)")
    kv, h = model.get("num_key_value_heads"), model.get("num_attention_heads")
    if _int(kv, 1) and _int(h, 1) and h % kv:
        problems.append(f"model.config.num_key_value_heads={kv} must divide model.config.num_attention_heads={h}")
    return problems


def _optimizer_problems(cfg: DictConfig) -> list[str]:
    """Keys `optimizer=muon` does not take (AdamW's are refused by Hydra's struct check alone, which a `+key`
    override passes), and what it does not combine with."""
    optimizer = OmegaConf.select(cfg, "optimizer", default=None, throw_on_resolution_failure=False)
    if not OmegaConf.is_dict(optimizer) or optimizer.get("_target_") != MUON:
        return []
    problems = [f"optimizer.{key} is not a key of optimizer=muon (its keys: {', '.join(MUON_KEYS)})"
                for key in optimizer if key not in (*MUON_KEYS, "_target_")]
    if OmegaConf.select(cfg, "peft", default=None, throw_on_resolution_failure=False):
        problems.append("optimizer=muon with peft: Muon on the low-rank adapters is untested here; "
                        "use optimizer=adamw")
    return problems


def _strategy_problems(cfg: DictConfig) -> list[str]:
    """What the strategy's own module says of its keys (`lmlab.parallel.fsdp_config`)."""
    from lmlab.parallel import fsdp_config

    def select(key: str) -> object:
        return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)

    problems = fsdp_config.check(select)
    interval, every_epochs = select("trainer.val_check_interval"), select("trainer.check_val_every_n_epoch")
    if isinstance(interval, float) and every_epochs is None:
        problems.append(f"trainer.val_check_interval={interval} is a fraction of an epoch, which needs "
                        "trainer.check_val_every_n_epoch=1 (or give a number of steps: trainer.val_check_interval=25)")
    return problems


def config_problems(cfg: DictConfig, checks: dict[str, tuple[Callable[[object], bool], str]] | None = None) \
        -> list[str]:
    """One `<key>=<value> <what is wrong>` line for each problem: mandatory values missing, bad values.

    `checks` defaults to `lmlab-train`'s (`CHECKS`, every callback's intervals, the model's consistency)."""
    problems = [f"{key}=??? is a mandatory value: set it on the command line ({key}=...)"
                for key in sorted(OmegaConf.missing_keys(cfg))]
    missing = set(OmegaConf.missing_keys(cfg))
    if checks is None:
        checks = {**CHECKS, **_callback_checks(cfg)}
        problems += _model_problems(cfg) + _optimizer_problems(cfg) + _strategy_problems(cfg)
    for key, (check, expected) in checks.items():
        if key in missing or OmegaConf.select(cfg, key, default="<absent>", throw_on_resolution_failure=False) \
                == "<absent>":
            continue
        try:
            value = OmegaConf.select(cfg, key, throw_on_missing=True)
        except OmegaConfBaseException as e:
            problems.append(f"{key} could not be resolved: {str(e).splitlines()[0]}")
            continue
        if not check(value):
            problems.append(f"{key}={value!r} {expected}")
    return problems


def validate_config(cfg: DictConfig, checks: dict[str, tuple[Callable[[object], bool], str]] | None = None) -> None:
    """Raise one `LmlabError` listing every problem `config_problems` finds."""
    if problems := config_problems(cfg, checks):
        raise LmlabError("; ".join(problems))
