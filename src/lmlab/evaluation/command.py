"""`lmlab-eval SOURCE tasks=[...]`: a causal LM (CLM, SFT, LoRA merged) scored on lm-eval tasks, in memory."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from lmlab.errors import LmlabError
from lmlab.evaluation.harness import HarnessSpec, evaluate_model, task_metrics

log = logging.getLogger("lmlab")


def spec_from_config(cfg: DictConfig, default_batch_size: int = 16) -> HarnessSpec:
    """The harness arguments of an `lmlab-eval` or `downstream_eval` config node, checked."""
    spec = HarnessSpec(tasks=as_list(cfg.tasks), include_path=as_list(cfg.get("include_path") or []),
                       num_fewshot=cfg.get("num_fewshot"), limit=cfg.get("limit"),
                       batch_size=cfg.get("batch_size") or default_batch_size,
                       bootstrap_iters=cfg.get("bootstrap_iters", 0))
    spec.check()
    return spec


def as_list(value) -> list[str]:
    """A config value given as one name or a list of them."""
    return [str(v) for v in value] if isinstance(value, ListConfig | list | tuple) else [str(value)]


def source_step(source: str) -> int | None:
    """The training step of the weights SOURCE names: a checkpoint's, a finished run's; None for other models."""
    from lmlab.models.locate import is_lmlab_run

    path = Path(source).expanduser()
    if path.is_dir() and is_lmlab_run(path):
        if (path / "hf" / "config.json").is_file() and (path / "finished.json").is_file():
            return int(json.loads((path / "finished.json").read_text())["global_step"])
        path = path / "checkpoints" / "last.ckpt"
    if path.exists() and path.suffix == ".ckpt":  # a file, or a sharded checkpoint (a directory)
        from lmlab.runs.checkpoint_load import read_checkpoint

        return int(read_checkpoint(path, "source")["global_step"])
    return None


def output_dir(cfg: DictConfig, source: str) -> Path:
    """`output_dir`, else the run's own eval/ directory, else ./eval (a Hugging Face model)."""
    from lmlab.models.locate import is_lmlab_run

    if cfg.get("output_dir"):
        return Path(cfg.output_dir).expanduser()
    path = Path(source).expanduser()
    for run_dir in (path, path.parent.parent):
        if run_dir.is_dir() and is_lmlab_run(run_dir):
            return run_dir / "eval"
    return Path("eval")


def evaluate_tasks(cfg: DictConfig, source: str) -> dict[str, dict[str, float]]:
    import torch
    from lm_eval.utils import make_table

    from lmlab.console import quiet_third_party
    from lmlab.generate import load_model

    spec = spec_from_config(cfg)
    quiet_third_party()
    model, tokenizer = load_model(source, cfg.get("cache_dir"))
    if not model.can_generate():
        raise LmlabError(f"source={source!r} is not a causal language model (lm-eval tasks score next-token "
                         "likelihoods)")
    step = source_step(source)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.accelerator == "auto" else cfg.accelerator
    model.to(device)
    log.info("Evaluating %s%s on %s", source, "" if step is None else f" (step {step})", ", ".join(spec.tasks))
    results = evaluate_model(model, tokenizer, spec)
    print(make_table(results), flush=True)
    out_dir = output_dir(cfg, source)
    out_dir.mkdir(parents=True, exist_ok=True)
    for task, values in results["results"].items():
        record: dict[str, Any] = {
            "task": task, "source": source, "step": step, "limit": spec.limit, "results": values,
            "n-shot": results.get("n-shot", {}).get(task), "n-samples": results.get("n-samples", {}).get(task),
            "versions": results.get("versions", {}).get(task), "config": results.get("configs", {}).get(task),
        }
        (out_dir / f"{task}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    log.info("Written to %s", out_dir)
    return task_metrics(results)
