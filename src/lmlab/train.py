"""`lmlab-train`: compose the config → build data, module, callbacks, loggers, trainer → fit → export.

Heavy imports (Lightning, transformers) happen inside `train`, so `lmlab-train --help` stays instant.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from lmlab.config import check_overrides, config_dir, register_resolvers
from lmlab.errors import LmlabError, not_loadable
from lmlab.runs.lifecycle import begin_launch, claim_run_dir, end_launch, environment_error, start_training
from lmlab.runs.logfile import drop_file_logging
from lmlab.runs.redact import mask
from lmlab.runs.validate import validate_config

log = logging.getLogger("lmlab")
register_resolvers()
# Deprecation chatter from inside torchdata and Lightning, not actionable by users.
warnings.filterwarnings("ignore", message="'set_vital' is deprecated")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# Optuna's database migrations (alembic) log their INFO lines when a search starts.
logging.getLogger("alembic").setLevel(logging.WARNING)
# transformers imports torchao wherever it is installed (model.fp8 needs it); torchao's enum registrations warn
# under torch >= 2.12, on every launch and before every one-line error.
logging.getLogger("torch.utils._pytree").addFilter(lambda record: "is an Enum subclass" not in record.getMessage())
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "💡 Tip" not in record.getMessage()  # an advertisement, printed on every run
)


def check_config(cfg: DictConfig) -> None:
    """Cheap checks that would otherwise fail deep inside training (or after data preparation)."""
    from transformers import AutoConfig

    from lmlab.data.mixed_blocks import check_sources
    from lmlab.distributed import check_gpu_count
    from lmlab.models import context_length
    from lmlab.models.fp8 import check_fp8_config
    from lmlab.models.lora import check_peft_config

    check_peft_config(cfg)
    check_gpu_count(cfg.trainer)
    check_fp8_config(cfg.model, str(cfg.trainer.get("accelerator", "auto")), peft=bool(cfg.get("peft")))
    spec = cfg.model
    if spec.get("pretrained"):
        try:
            model_config = AutoConfig.from_pretrained(spec.pretrained)
        except (OSError, ValueError) as e:
            raise not_loadable("model.pretrained", spec.pretrained, e) from e
    else:
        model_config = hydra.utils.instantiate(spec.config)
    sources = [cfg.data.source] if cfg.data.get("source") else []
    if cfg.data.get("sources") is not None:  # a mixture (data=mixture)
        check_sources(cfg.data.sources, cfg.data.get("samples_per_epoch"))
        sources += [spec.source for spec in cfg.data.sources.values()]
    for source in map(hydra.utils.instantiate, sources):
        source.fingerprint()  # a missing file or dataset fails here
        if hasattr(source, "check_text"):
            source.check_text()  # text that does not decode fails here
    if cfg.data.get("document_masking") and cfg.get("task_name") != "clm":
        raise LmlabError(f"data.document_masking=true is for causal-LM pretraining (task=clm), not task="
                         f"{cfg.get('task_name')}: remove it")
    block_size = cfg.data.get("block_size")
    limit = context_length(model_config)
    if block_size and limit and block_size > limit:
        raise LmlabError(f"data.block_size={block_size} exceeds the model's context of {limit} positions "
                         f"(model={cfg.model.get('name')}); lower data.block_size")


def train(cfg: DictConfig) -> float | None:
    """Train one run; returns the monitored validation metric (what a sweeper optimizes)."""
    begin_launch(cfg)  # secrets masked in every log line; train.log held back until this launch trains
    validate_config(cfg)  # every bad value of lmlab's keys, in one message
    check_config(cfg)  # before the ~9 s Lightning import: bad input fails fast

    import lightning as L
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.trainer.states import TrainerStatus
    from lightning.pytorch.utilities import rank_zero_only

    from lmlab.console import quiet_third_party
    from lmlab.distributed import apply_global_batch_size, validate_every_n_steps
    from lmlab.runs.guard import RunGuard
    from lmlab.runs.hydra_ddp import use_job_overrides_for_ddp_children
    from lmlab.runs.resume import mark_finished, plan_resume, record_resume
    from lmlab.runs.resume import report as report_resume
    from lmlab.runs.tracking import log_config
    from lmlab.runs.wandb_history import relog_missing
    from lmlab.utils.allocator import keep_freed_memory
    from lmlab.utils.instantiate import instantiate_named
    from lmlab.utils.provenance import resolved_config, write_provenance
    from lmlab.utils.rich_utils import print_config_tree

    keep_freed_memory()  # before training allocates: no page faults on each step's large tensors
    if cfg.model.get("compile"):
        from lmlab.models.compile import use_compile_cache

        use_compile_cache(cfg.paths.compile_cache_dir)  # a sweep's later jobs and a requeue compile nothing again
    quiet_third_party()  # Lightning's lines once, no third-party progress bars or fresh-head load reports
    if rank_zero_only.rank != 0:  # ranks started by srun or torchrun: rank 0 alone writes the run's train.log
        drop_file_logging()  # begin_launch held the file handler back; this rank never gets it

    run_dir = Path(cfg.paths.run_dir)
    apply_global_batch_size(cfg)
    validate_every_n_steps(cfg)
    claim_run_dir(run_dir)  # one writer per run directory
    plan = plan_resume(cfg, run_dir)
    if rank_zero_only.rank == 0:
        report_resume(plan, run_dir)
    if plan.finished is not None:
        return plan.finished.get("metric")
    start_training(run_dir, plan.step)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(
        cfg.task.module,
        model=OmegaConf.to_container(cfg.model, resolve=True),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None,
        peft=OmegaConf.to_container(cfg.peft, resolve=True) if cfg.get("peft") else None,
        tokenizer=datamodule.tokenizer,
        **_module_kwargs(datamodule),
        _recursive_=False,
        _convert_="all",  # plain containers in hparams, so checkpoints load with torch's weights_only
    )
    callbacks = [*instantiate_named(cfg.get("callbacks")), RunGuard(run_dir)]
    loggers = instantiate_named(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)

    if rank_zero_only.rank == 0:
        if _first_job_of_launch():  # a sweep prints its config tree once; every run has its config.yaml
            print_config_tree(cfg)
        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        if plan.ckpt_path and (run_dir / "config.yaml").is_file():
            record_resume(run_dir, overrides, plan)  # keeps the first launch's config.yaml and run.json
        else:
            write_provenance(cfg, run_dir, overrides)
        log_config(loggers, {**resolved_config(cfg), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")},
                   _derived_hparams(module, datamodule))
        if plan.ckpt_path:
            relog_missing(loggers, run_dir)  # what an earlier launch logged to metrics.csv but not to W&B
        log.info("Run directory: %s", run_dir)

    if HydraConfig.initialized():
        use_job_overrides_for_ddp_children()
    # weights_only=False: lmlab checkpoints hold RNG states and hyperparameters, not only tensors
    trainer.fit(module, datamodule=datamodule, ckpt_path=plan.ckpt_path, weights_only=False)

    metric = trainer.callback_metrics.get(cfg.monitor.metric)
    metric = None if metric is None else float(metric)
    if trainer.state.status == TrainerStatus.FINISHED and trainer.is_global_zero:
        mark_finished(run_dir, trainer.global_step, metric)
    return metric


def _first_job_of_launch() -> bool:
    """A single run, or the first job a sweep's process runs."""
    from hydra.core.hydra_config import HydraConfig

    return not HydraConfig.initialized() or HydraConfig.get().job.get("num", 0) == 0


def _derived_hparams(module, datamodule) -> dict:
    """The module's hyperparameters that no config key holds: from the tokenizer and the data module."""
    keys = ("vocab_size", "token_ids", *_module_kwargs(datamodule))
    return {key: module.hparams[key] for key in keys if key in module.hparams}


def _module_kwargs(datamodule) -> dict:
    """What a data module hands to the LightningModule beyond the tokenizer (a classifier's label names)."""
    return datamodule.module_kwargs() if hasattr(datamodule, "module_kwargs") else {}


def run_task(task_fn, cfg: DictConfig) -> float | None:
    """Run `task_fn(cfg)`; in a single run a user error is one line on stderr and exit status 2.

    In a multirun the error is raised instead, so Hydra records it for that job and runs the others.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    environ = dict(os.environ)
    try:
        return task_fn(cfg)
    except (LmlabError, OSError) as e:
        error = e if isinstance(e, LmlabError) else environment_error(e, OmegaConf.select(cfg, "paths.run_dir"))
        if multirun or error is None:
            raise
        log.error("error: %s", error)
        print(f"error: {mask(str(error))}", file=sys.stderr)
        sys.exit(2)
    finally:
        end_launch()
        _finish_wandb()
        _leave_process_group()
        _restore_environment(environ)


def _finish_wandb() -> None:
    """Close any W&B run, so that the next run of a multirun starts its own (and a failure is synced)."""
    if "wandb" in sys.modules:
        from lmlab.runs.tracking import finish_wandb

        finish_wandb()


def _leave_process_group() -> None:
    """End this run's DDP process group, so that the next run of a multirun starts its own."""
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _restore_environment(environ: dict[str, str]) -> None:
    """Put `os.environ` back as it was before the run, so that the next run of a multirun starts from it.

    A run changes the environment of its process: Lightning's launcher leaves LOCAL_RANK, WORLD_SIZE,
    MASTER_PORT... (the next run would believe its processes were started externally and wait for them
    forever), its offline `WandbLogger` sets WANDB_MODE=dryrun (the next run would go offline for that
    reason, whatever its own), seeding sets PL_GLOBAL_SEED.
    """
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    for key, value in environ.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


@hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_task(train, cfg)


def main() -> None:
    check_overrides("train", sys.argv[1:])  # a bad override: one line, status 2
    _hydra_main()


if __name__ == "__main__":
    main()
