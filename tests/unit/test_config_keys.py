"""One list of keys that don't change what is trained, used by run names, W&B names, resume and lmlab-compare."""

from __future__ import annotations

import pytest

from lmlab.checkpoint.resume import config_changes
from lmlab.compare import Run, varying_keys
from lmlab.config import run_name_from_overrides
from lmlab.config_keys import PLACEMENT_KEYS, UNTRAINED_KEYS, split_override_dirname
from lmlab.tracking.wandb_logger import wandb_run_name

# One override per entry of UNTRAINED_KEYS (a prefix gets a key under it).
UNTRAINED = ["paths.cache_dir=/c", "hydra.verbose=true", "run_name=x", "run_dir=/r", "sweep_name=s", "resume=force",
             "ckpt_path=/k.ckpt", "logger=wandb", "data.cache_dir=/d", "data.num_workers=4",
             "callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false", "print_config=true", "callbacks.model_checkpoint.save_top_k=3",
             "callbacks.last_checkpoint.every_n_train_steps=5", "callbacks.preemption=null",
             "callbacks.lr_monitor=null", "callbacks.speed_monitor.window=5", "callbacks.run_summary=null",
             "callbacks.optuna_pruning=null", "callbacks.export_hf=null",
             "callbacks.early_stopping.verbose=false", "callbacks.samples=null", "trainer.default_root_dir=/x",
             "trainer.plugins=[]", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0"]


def test_the_overrides_cover_every_entry_of_the_list():
    assert {next(k for k in UNTRAINED_KEYS if o.startswith(k)) for o in UNTRAINED} == set(UNTRAINED_KEYS)


def nested(key: str, value: str) -> dict:
    """`a.b.c`, v → {"a": {"b": {"c": v}}}: a resolved config holding one key."""
    *parents, leaf = key.split(".")
    node = {leaf: value}
    for part in reversed(parents):
        node = {part: node}
    return node


@pytest.mark.parametrize("override", UNTRAINED)
def test_a_key_that_trains_nothing_is_left_out_everywhere(override):
    trained = ["model=llama-tiny", "optimizer.lr=3e-4"]
    assert run_name_from_overrides(",".join([*trained, override])) == run_name_from_overrides(",".join(trained))
    assert wandb_run_name([*trained, override]) == wandb_run_name(trained)
    key, _, value = override.partition("=")
    assert config_changes(nested(key, "before"), nested(key, value)) == []
    runs = [Run(path=f"r{i}", overrides={"optimizer.lr": f"{i}e-4", key: v}) for i, v in enumerate(("x", value))]
    assert varying_keys(runs)[0] == ["optimizer.lr"]


def test_devices_stay_out_of_the_run_name_but_are_reported_on_resume():
    assert run_name_from_overrides("model=llama-tiny,trainer.devices=2") == "model-llama-tiny"
    assert config_changes({"trainer": {"devices": 1}}, {"trainer": {"devices": 2}}) == ["trainer.devices: 1 -> 2"]


def test_override_dirname_splits_at_items_not_at_commas_inside_values():
    assert split_override_dirname("data.labels=[a,b],+x@y/z=1,~w=2") == ["data.labels=[a,b]", "+x@y/z=1", "~w=2"]
    assert split_override_dirname("") == []


# The keys of the scheduler, callbacks, logger and trainer groups that change the trained weights: each names
# the run. Every other key of these groups (any option's) must stay out of the run name (lmlab.config_keys).
TRAINED = {"scheduler._target_", "scheduler.name", "scheduler.num_warmup_steps", "scheduler.decay_fraction",
           "scheduler.decay_type", "scheduler.warmup_type", "scheduler.min_lr_ratio",
           "trainer._target_", "trainer.precision", "trainer.limit_train_batches", "trainer.gradient_clip_val",
           "trainer.accumulate_grad_batches", "trainer.deterministic",
           "callbacks.early_stopping._target_", "callbacks.early_stopping.monitor", "callbacks.early_stopping.mode",
           "callbacks.early_stopping.patience", "callbacks.early_stopping.min_delta",
           "callbacks.early_stopping.check_on_train_epoch_end"}
GROUPS = ("scheduler", "callbacks", "logger", "trainer")


def group_keys() -> set[str]:
    """Every leaf key of GROUPS in every option of GROUPS and of `task`, as the composed configs hold them."""
    from conftest import compose
    from omegaconf import OmegaConf

    from lmlab.config import config_dir

    keys = set()
    choices = [f"{group}={option.stem}" for group in (*GROUPS, "task")
               for option in (config_dir() / group).glob("*.yaml")]
    for choice in sorted(choices):  # a task adds its own callbacks
        cfg = compose([choice])
        for group in GROUPS:
            keys |= set(_leaves(OmegaConf.to_container(cfg[group], resolve=False), f"{group}."))
    return keys


def _leaves(node: object, prefix: str) -> list[str]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def test_every_key_of_the_run_groups_is_either_trained_or_out_of_the_run_name():
    keys = group_keys()
    assert keys >= TRAINED, TRAINED - keys  # the list above names real keys
    base = ["model=llama-tiny", "optimizer.lr=3e-4"]
    named = run_name_from_overrides(",".join(base))
    for key in sorted(keys):
        name = run_name_from_overrides(",".join([*base, f"{key}=7"]))
        if key in TRAINED:
            assert name != named, f"{key} changes the trained weights but not the run name"
        else:
            assert name == named, f"{key} does not change the trained weights but names the run ({name})"
            assert config_changes(nested(key, "1"), nested(key, "7")) == ([] if not key.startswith(PLACEMENT_KEYS)
                                                                          else [f"{key}: '1' -> '7'"])


@pytest.mark.parametrize("choice", ["scheduler=linear", "trainer=gpu", "callbacks=early_stopping"])
def test_a_group_choice_that_trains_names_the_run(choice):
    assert run_name_from_overrides(f"model=llama-tiny,{choice}") != run_name_from_overrides("model=llama-tiny")


def test_a_budget_relaunch_with_on_budget_change_finds_the_same_run():
    """The issue's relaunch: `resume=force scheduler.on_budget_change=continue` must find the first run."""
    first = run_name_from_overrides("debug=fast,trainer.max_steps=10")
    assert run_name_from_overrides("debug=fast,trainer.max_steps=20,resume=force,"
                                   "scheduler.on_budget_change=continue") == first == "debug-fast"
    assert config_changes({"scheduler": {"on_budget_change": "replan"}},
                          {"scheduler": {"on_budget_change": "continue"}}) == []
