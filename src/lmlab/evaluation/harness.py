"""lm-evaluation-harness on a model already in memory: the one place lmlab calls lm-eval.

`lmlab-eval` and the `downstream_eval` callback both come here, so a figure logged during training and one
computed afterwards from the same weights go through the same code (and are equal). Tasks are lm-eval's own
(by name), lmlab's embedded tasks (`lmlab.evaluation.tasks`), or YAML files in the user's `include_path`
directories (lm-eval's format, e.g. with local `data_files`: offline).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lmlab.errors import LmlabError
from lmlab.evaluation.config_checks import HARNESS_KEYS
from lmlab.utils.key_checks import key_problems

log = logging.getLogger(__name__)

EMBEDDED_TASKS = Path(__file__).parent / "tasks"
# lm-eval's warnings about what lmlab does on purpose: an in-memory model, a task built by a function
EXPECTED_WARNINGS = ("`pretrained` model kwarg is not of type `str`", "Passed an already-initialized model",
                     "Custom kwargs can be passed to `--metadata`")


PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[")  # a tqdm bar: `100%|####| 16/16 [00:00<...]`


class ExpectedWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in EXPECTED_WARNINGS)


@dataclass(frozen=True)
class HarnessSpec:
    """What to evaluate and how: the arguments both lmlab-eval and the callback pass to lm-eval."""

    tasks: Sequence[str]
    include_path: Sequence[str] = ()
    num_fewshot: int | None = None
    limit: int | float | None = None
    batch_size: int = 16
    bootstrap_iters: int = 100000  # lm-eval's default; standard errors only (0: none, as during training)

    def check(self, key: str = "tasks") -> None:
        """User errors, before any model is loaded: no tasks, a missing include_path, an unknown task name."""
        if not self.tasks:
            raise LmlabError(f"{key}=[] names no task (e.g. {key}=[lmlab_next_line] or [lambada_openai,arc_easy])")
        for path in self.include_path:
            if not Path(path).expanduser().is_dir():
                raise LmlabError(f"include_path={path!r} is not a directory of lm-eval task YAML files")
        values = {key: getattr(self, key) for key in HARNESS_KEYS}
        if problems := key_problems(OmegaConf.create(values), HARNESS_KEYS):  # as lmlab-eval checks its config
            raise LmlabError("; ".join(problems))
        manager = task_manager(self.include_path)
        known = set(manager.all_subtasks + manager.all_groups)
        unknown = [t for t in self.tasks if t not in known]
        if unknown:
            raise LmlabError(f"{key}: no lm-eval task named {', '.join(map(repr, unknown))} (lm-eval's task names, "
                             f"lmlab's embedded ones, or YAML files under include_path={list(self.include_path)})")


_task_managers: dict[tuple[str, ...], Any] = {}


def task_manager(include_path: Sequence[str]):
    """lm-eval's index of tasks with lmlab's embedded ones and the user's directories (built once: it reads
    every task YAML lm-eval ships)."""
    key = tuple(str(Path(p).expanduser().resolve()) for p in include_path)
    if key not in _task_managers:
        from lm_eval.tasks import TaskManager

        _task_managers[key] = TaskManager(include_path=[str(EMBEDDED_TASKS), *key], verbosity="WARNING")
    return _task_managers[key]


def evaluate_model(model, tokenizer, spec: HarnessSpec, progress: bool = False) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` on `model` in place (its device, its dtype, eval mode for the call):
    lm-eval's results dict, without per-sample logs. Deterministic: lm-eval seeds Python's, NumPy's and torch's
    generators; their states are restored afterwards, so a training run's random stream is left as it was.
    `progress`: lm-eval's progress bars (off during training: they would fill its log)."""
    import contextlib
    import io
    import random
    import sys

    import numpy as np
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from lmlab.compat.lm_eval import install_quiet_git_hash

    install_quiet_git_hash()  # no `fatal: not a git repository` outside a checkout
    logging.getLogger("lm_eval").setLevel(logging.WARNING)  # its per-task INFO lines; warnings still show
    for name in ("lm_eval.models.huggingface", "lm_eval.api.task"):
        if not any(isinstance(f, ExpectedWarnings) for f in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(ExpectedWarnings())
    was_training = model.training
    model.eval()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    bars = None if progress else io.StringIO()  # lm-eval's tqdm bars write to sys.stderr; logging keeps its stream
    try:
        with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []), (
                contextlib.redirect_stderr(bars) if bars is not None else contextlib.nullcontext()):
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=spec.batch_size)
            results = simple_evaluate(model=lm, tasks=list(spec.tasks), num_fewshot=spec.num_fewshot,
                                      limit=spec.limit, task_manager=task_manager(spec.include_path),
                                      log_samples=False, bootstrap_iters=spec.bootstrap_iters, verbosity="WARNING")
    finally:
        if bars is not None:  # what was not a progress bar is shown after all
            rest = [line for line in re.split(r"[\r\n]", bars.getvalue()) if line.strip() and not PROGRESS.search(line)]
            sys.stderr.writelines(f"{line}\n" for line in rest)
        model.train(was_training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return results


def task_metrics(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} from lm-eval's results: the figures, without its filter suffix (`acc,none` → `acc`)
    and without standard errors."""
    table: dict[str, dict[str, float]] = {}
    for task, values in results["results"].items():
        metrics = {}
        for key, value in values.items():
            metric, _, filter_name = key.partition(",")
            if not filter_name or metric.endswith("_stderr") or not isinstance(value, int | float):
                continue
            metrics[metric if filter_name == "none" else f"{metric}_{filter_name}"] = float(value)
        table[task] = metrics
    return table
