"""`debug=fast` for every task, as a batch job sees it: stdout is a pipe, not a terminal.

Progress is then one plain line per `log_every_n_steps` and per validation (also in train.log), every
line once, and no third-party noise (progress bars of datasets/transformers, fresh-head load reports,
"Total FLOPs: 0").
"""

from __future__ import annotations

import re

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow

SMALLER = {"clm": ["model.config.n_layer=1", "model.config.n_embd=64", "model.config.n_head=2",
                   "callbacks.samples=null"],
           "mlm": ["model.config.num_hidden_layers=1"],
           "classify": ["model.config.num_hidden_layers=1", "data.source.packages=[asyncio,tkinter]",
                        "data.max_length=64"]}
NOISE = ["LOAD REPORT", "MISSING", "Loading weights", "Map:", "Generating train split", "Total FLOPs", "it/s]"]


@pytest.mark.parametrize("task", ["clm", "mlm", "classify"])
def test_debug_fast_runs_and_a_piped_log_shows_progress_lines(task, tmp_path, cache_dir):
    result = run_cli([f"task={task}", "debug=fast", *SMALLER[task], f"paths.root_dir={tmp_path}",
                      f"paths.cache_dir={cache_dir}", "run_name=fast"], cwd=tmp_path)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]

    steps = re.findall(r"step (\d+)/20  epoch \d+  loss \d+\.\d+  lr \S+  \d+\.\d+ it/s  ETA \S+", result.stdout)
    assert steps == ["5", "10", "15", "20"], result.stdout[-3000:]  # debug=fast: log_every_n_steps=5
    validations = re.findall(r"validation at step (\d+) \(epoch \d+\): val/\w+ \d", result.stdout)
    assert validations == ["10", "20"]
    log = (tmp_path / "outputs" / task / "fast" / "train.log").read_text()
    assert "step 20/20" in log and "validation at step 20" in log
    for noise in NOISE:
        assert noise not in console, noise
    assert console.count("GPU available") == 1 and console.count("validation at step 20") == 1
    if task != "classify":
        return
    ckpt = tmp_path / "outputs" / "classify" / "fast" / "checkpoints" / "last.ckpt"
    result = run_cli([f"ckpt_path={ckpt}", "split=validation"], cwd=tmp_path, module="lmlab.evaluate")
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]
    assert console.count("(step 20, epoch ") == 2  # "Evaluating ... (step 20, epoch 1)" and the scores' line
    assert console.count("GPU available") == 1 and console.count("accuracy") == 1
    for noise in NOISE:
        assert noise not in console, noise
