"""One list of keys that don't change what is trained, used by run names, W&B names, resume and lmlab-compare."""

from __future__ import annotations

import pytest

from lmlab.compare import Run, varying_keys
from lmlab.config import run_name_from_overrides
from lmlab.config_keys import UNTRAINED_KEYS, split_override_dirname
from lmlab.runs.resume import config_changes
from lmlab.runs.tracking import wandb_run_name

# One override per entry of UNTRAINED_KEYS (a prefix gets a key under it).
UNTRAINED = ["paths.cache_dir=/c", "hydra.verbose=true", "run_name=x", "run_dir=/r", "sweep_name=s", "resume=force",
             "ckpt_path=/k.ckpt", "logger=wandb", "data.cache_dir=/d", "data.num_workers=4",
             "callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false"]


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
