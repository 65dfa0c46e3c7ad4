"""Every option of every config group, and every experiment, composes and instantiates offline."""

from __future__ import annotations

import pytest
from conftest import ROOT, compose
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from lmlab.config import config_dir
from lmlab.utils.instantiate import instantiate_named

CONF = config_dir()
# Groups that configure Hydra itself, not lmlab objects.
SKIP_GROUPS = {"hydra"}
# Options that need a value the user must supply.
REQUIRED = {
    ("data", "files"): [f"data.source.train={ROOT / 'README.md'}"],
    ("data", "hub"): ["data.source.path=some/dataset"],
    ("data", "mixture"): [f"data.sources.text.source.train={ROOT / 'README.md'}"],
    ("data", "remote"): ["data.url=s3://bucket/corpus"],
    ("data", "classification"): ["data.source={_target_:lmlab.data.StdlibFunctions}", "task=classify"],
    ("data", "sst2_local"): [f"data.source.path={ROOT.parent / 'shared' / 'data' / 'sst2'}", "task=classify"],
    ("data", "imdb_local"): ["data.source.path=/data/imdb", "task=classify"],
    ("data", "sft"): ["data.source={_target_:lmlab.data.SyntheticInstructions}", "task=sft"],
    ("data", "sft_local"): ["data.source.path=/data/sft", "task=sft"],
    ("data", "preference"): ["data.source={_target_:lmlab.data.SyntheticPreferences}", "task=dpo"],
    ("data", "preference_local"): ["data.source.path=/data/preference", "task=dpo"],
    ("data", "local"): [f"data.source.path={ROOT.parent / 'shared' / 'data' / 'sst2'}", "task=classify",
                        "data.source.files.validation=dev.tsv", "data.source.files.test=null"],
    ("experiment", "minilm_sst2"): [f"data.source.path={ROOT.parent / 'shared' / 'data' / 'sst2'}"],
}


def group_options() -> list[tuple[str, str]]:
    options = []
    for path in sorted(CONF.rglob("*.yaml")):
        rel = path.relative_to(CONF)
        if len(rel.parts) < 2 or rel.parts[0] in SKIP_GROUPS:
            continue
        options.append(("/".join(rel.parts[:-1]), rel.stem))
    return options


def instantiate_config(cfg) -> None:
    """Instantiate what `lmlab-train` would, short of loading weights or data."""
    import torch

    if cfg.model.get("config"):
        instantiate(cfg.model.config)
    get_class(cfg.task.module._target_)
    data = instantiate(cfg.data)
    assert hasattr(data, "train_dataloader")
    # groups marked as lmlab.optim.muon.muon_groups marks them for optimizer=muon (the others ignore the key),
    # passed as lmlab.modules.base passes them
    params = [{"params": [torch.nn.Parameter(torch.zeros(2, 2))], "muon": True},
              {"params": [torch.nn.Parameter(torch.zeros(2))], "muon": False}]
    optimizer = instantiate(cfg.optimizer, _partial_=True)(params)
    if cfg.get("scheduler"):  # on_budget_change is lmlab's, read by the module before it instantiates the rest
        scheduler = {k: v for k, v in cfg.scheduler.items() if k != "on_budget_change"}
        instantiate(scheduler, optimizer=optimizer, num_training_steps=100)
    callbacks = instantiate_named(cfg.get("callbacks"))
    loggers = instantiate_named(cfg.get("logger"))
    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        strategy = cfg.trainer.get("strategy")
        if isinstance(strategy, DictConfig) and "FSDP" in strategy._target_:
            instantiate(strategy)  # FSDP refuses a CPU Trainer; the strategy itself must still build
            return
        cfg.trainer.accelerator = "cpu"  # the rest of a GPU preset (precision, strategy) still instantiates
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert trainer.max_steps == cfg.trainer.max_steps


@pytest.mark.parametrize(("group", "option"), group_options())
def test_every_group_option_composes_and_instantiates(group, option, tmp_path):
    if group.startswith("hparams_search"):
        pytest.skip("sweeper configs are exercised by the sweep tests")
    overrides = [f"{group}={option}", *REQUIRED.get((group, option), []), f"paths.root_dir={tmp_path}",
                 f"paths.run_dir={tmp_path / 'run'}", "run_name=test"]
    cfg = compose(overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    assert OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if group.startswith("hydra/") or group == "debug" and option != "fast":
        return
    instantiate_config(cfg)


def test_every_option_is_listed():
    """A guard on the parametrization: the groups users rely on are all found."""
    groups = {group for group, _ in group_options()}
    assert {"task", "model", "data", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths",
            "experiment", "debug"} <= groups


def test_overrides_compose_as_hydra_users_expect(tmp_path):
    cfg = compose(["model=llama-tiny", "trainer.max_steps=50", "optimizer.lr=3e-4", f"paths.root_dir={tmp_path}"])
    assert cfg.model.config._target_ == "transformers.LlamaConfig"
    assert cfg.trainer.max_steps == 50 and cfg.optimizer.lr == 3e-4
    assert cfg.data.tokenizer is None  # the model trains its own tokenizer


def test_task_chooses_its_default_model_but_the_command_line_wins(tmp_path):
    assert compose([f"paths.root_dir={tmp_path}"]).model.name == "gpt2-tiny"
    assert compose(["model=llama-tiny", f"paths.root_dir={tmp_path}"]).model.name == "llama-tiny"
