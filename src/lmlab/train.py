"""`lmlab-train`: compose the config → build data, module, callbacks, loggers, trainer → fit → export.

Heavy imports (Lightning, transformers) happen inside `train`, so `lmlab-train --help` stays instant.
"""

from __future__ import annotations

import sys
from functools import partial

import hydra
from omegaconf import DictConfig, OmegaConf

from lmlab.config import check_overrides, config_dir, register_resolvers
from lmlab.console import quiet_warnings
from lmlab.runs.command import run_command
from lmlab.runs.lifecycle import Launch
from lmlab.runs.lock import launch_rank_zero
from lmlab.runs.run import Run
from lmlab.sweeps.summary import job_failures_in_the_summary
from lmlab.utils.redact import mask_console


def train(cfg: DictConfig, launch: Launch | None = None) -> float | None:
    """Train one run; returns the monitored validation metric (what a sweeper optimizes). The caller that passes
    `launch` ends it (`run_command`); called without one (from Python), the launch is ended here."""
    if launch is None:
        launch = Launch()
        try:
            return train(cfg, launch)
        finally:
            launch.end()
    quiet_warnings()
    run = Run(cfg, launch)  # every config error in one line, before the Lightning import

    import lightning as L

    from lmlab.checkpoint.state import checkpoint_callbacks
    from lmlab.console import quiet_third_party
    from lmlab.runs.guard import RunGuard
    from lmlab.runs.hydra_ddp import use_job_overrides_for_ddp_children
    from lmlab.utils.allocator import keep_freed_memory
    from lmlab.utils.instantiate import instantiate_named

    keep_freed_memory()  # before training allocates: no page faults on each step's large tensors
    if cfg.model.get("compile"):
        from lmlab.models.compile import use_compile_cache

        use_compile_cache(cfg.paths.compile_cache_dir)  # a sweep's later jobs and a requeue compile nothing again
    quiet_third_party()  # Lightning's lines once, no third-party progress bars or fresh-head load reports
    plan = run.claim()
    if plan.finished is not None:
        return plan.finished.get("metric")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    if launch_rank_zero():
        datamodule.prepare_data()  # bad data fails here, before this launch writes into the run directory
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # the same init whether data was cached or not
    module = hydra.utils.instantiate(
        cfg.task.module,
        model=OmegaConf.to_container(cfg.model, resolve=True),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
        peft=OmegaConf.to_container(cfg.peft, resolve=True) if cfg.get("peft") else None,
        tokenizer=datamodule.tokenizer,
        **datamodule.module_kwargs(),  # lmlab.contracts.DataModule
        _recursive_=False,
        _convert_="all",  # plain containers in hparams, so checkpoints load with torch's weights_only
    )
    run.start()  # from here this launch writes into the run directory
    callbacks = [*instantiate_named(cfg.get("callbacks")), RunGuard(run.run_dir), *checkpoint_callbacks(cfg)]
    loggers = instantiate_named(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    run.record(loggers, _derived_hparams(module, datamodule))

    use_job_overrides_for_ddp_children()
    # weights_only=False: lmlab checkpoints hold RNG states and hyperparameters, not only tensors
    trainer.fit(module, datamodule=datamodule, ckpt_path=plan.ckpt_path, weights_only=False)
    return run.finish(trainer)


def _derived_hparams(module, datamodule) -> dict:
    """The module's hyperparameters that no config key holds: from the tokenizer and the data module."""
    keys = ("vocab_size", "token_ids", *datamodule.module_kwargs())
    return {key: module.hparams[key] for key in keys if key in module.hparams}


@hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    launch = Launch()
    return run_command(partial(train, launch=launch), cfg, launch)


def main() -> None:
    mask_console(sys.argv[1:])  # secrets masked in all Hydra prints, too
    register_resolvers()  # before Hydra composes; a sweep job in another process gets them with Hydra's state
    check_overrides("train", sys.argv[1:])  # a bad override: one line, status 2
    with job_failures_in_the_summary(sys.argv[1:]):  # a failed sweep job: its traceback in its error.txt
        _hydra_main()


if __name__ == "__main__":
    main()
