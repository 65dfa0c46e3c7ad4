"""`check_config`: cheap checks of what a config points at (a model, a source, a context length), made before
Lightning is imported, so bad input fails in seconds instead of deep inside training or after data preparation."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from lmlab.errors import LmlabError, not_loadable


def check_config(cfg: DictConfig) -> None:
    """Cheap checks that would otherwise fail deep inside training (or after data preparation)."""
    # first: a data source imports neither torch nor transformers
    sources = [cfg.data.source] if cfg.data.get("source") else []
    if cfg.data.get("sources") is not None:  # a mixture (data=mixture)
        from lmlab.data.mixed_blocks import check_sources

        check_sources(cfg.data.sources, cfg.data.get("samples_per_epoch"))
        sources += [spec.source for spec in cfg.data.sources.values()]
    for source in map(hydra.utils.instantiate, sources):
        source.fingerprint()  # a missing file or dataset fails here
        source.check_text()  # text that does not decode fails here (lmlab.contracts.Source)
    if (downstream := OmegaConf.select(cfg, "callbacks.downstream_eval")) is not None:
        from lmlab.evaluation.command import spec_from_config

        spec_from_config(downstream, key="callbacks.downstream_eval.tasks")  # an unknown task fails here
    if cfg.data.get("document_masking") and cfg.get("task_name") != "clm":
        raise LmlabError(f"data.document_masking=true is for causal-LM pretraining (task=clm), not task="
                         f"{cfg.get('task_name')}: remove it")

    from transformers import AutoConfig

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
    block_size = cfg.data.get("block_size")
    limit = context_length(model_config)
    if block_size and limit and block_size > limit:
        raise LmlabError(f"data.block_size={block_size} exceeds the model's context of {limit} positions "
                         f"(model={cfg.model.get('name')}); lower data.block_size")
