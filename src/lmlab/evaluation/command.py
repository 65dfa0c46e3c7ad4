"""`lmlab-eval SOURCE tasks=[...]`: a causal LM (CLM, SFT, LoRA merged) scored on lm-eval tasks, in memory."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from lmlab.checkpoint.description import is_lmlab_run
from lmlab.checkpoint.locate import locate_model
from lmlab.errors import LmlabError
from lmlab.evaluation.harness import HarnessSpec, evaluate_model, task_metrics

log = logging.getLogger("lmlab")


def spec_from_config(cfg: DictConfig, default_batch_size: int = 16, key: str = "tasks") -> HarnessSpec:
    """The harness arguments of an `lmlab-eval` or `downstream_eval` config node, checked (`key` names the
    node's `tasks` in errors)."""
    spec = HarnessSpec(tasks=as_list(cfg.tasks), include_path=as_list(cfg.get("include_path") or []),
                       num_fewshot=cfg.get("num_fewshot"), limit=cfg.get("limit"),
                       batch_size=cfg.get("batch_size") or default_batch_size,
                       bootstrap_iters=cfg.get("bootstrap_iters", 0))
    spec.check(key)
    return spec


def as_list(value) -> list[str]:
    """A config value given as one name or a list of them."""
    return [str(v) for v in value] if isinstance(value, ListConfig | list | tuple) else [str(value)]


def source_step(source: str) -> int | None:
    """The training step of the weights SOURCE names (`locate_model`'s rule): a checkpoint's, a finished run's
    `hf/` export's; None for other models."""
    found = locate_model(source, "source")
    if isinstance(found, Path):  # an lmlab checkpoint
        from lmlab.checkpoint.reader import read_checkpoint

        return int(read_checkpoint(found, "source")["global_step"])
    run_dir = source_run(found)
    if run_dir is not None and (run_dir / "finished.json").is_file():
        return int(json.loads((run_dir / "finished.json").read_text())["global_step"])
    return None


def source_run(found: Path | str) -> Path | None:
    """The lmlab run whose checkpoint or `hf/` export `locate_model` found; None for other models."""
    run_dir = found.parent.parent if isinstance(found, Path) else Path(found).parent
    return run_dir if Path(found).exists() and is_lmlab_run(run_dir) else None


def output_dir(cfg: DictConfig, source: str) -> Path:
    """`output_dir`, else the run's own eval/ directory, else ./eval (a Hugging Face model)."""
    if cfg.get("output_dir"):
        return Path(cfg.output_dir).expanduser()
    run_dir = source_run(locate_model(source, "source"))
    return Path("eval") if run_dir is None else run_dir / "eval"


def evaluate_tasks(cfg: DictConfig, source: str) -> dict[str, dict[str, float]]:
    import torch
    from lm_eval.utils import make_table

    from lmlab.checkpoint.hf_model import load_model
    from lmlab.console import quiet_third_party

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
    results = evaluate_model(model, tokenizer, spec, progress=sys.stderr.isatty())
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
