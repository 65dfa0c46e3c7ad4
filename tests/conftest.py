"""Shared fixtures: offline environment, composed configs, in-process and CLI runs of `lmlab-train`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# tests/unit/<package>/ mirrors src/lmlab/, tests/e2e/ drives the commands as a user would, tests/helpers/ holds
# what both import and what the runs they start load by `_target_` (callbacks that kill, pause, record).
HELPERS = Path(__file__).resolve().parent / "helpers"
sys.path.insert(0, str(HELPERS))
# A launched `lmlab-train` finds the helpers' callbacks (`+callbacks.kill._target_=signal_at_step.SigkillAt`).
TEST_CALLBACKS = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")]))}

# Tests never touch the network: no hub downloads, W&B offline.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="offline",
                  WANDB_SILENT="true", TOKENIZERS_PARALLELISM="true")
# Under pytest-xdist the workers share the cores: one math thread each (and in each process a test starts),
# rather than the workers' thread pools spinning against each other.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# A few steps of a tiny model on a slice of the stdlib corpus: the shape of most end-to-end tests.
TINY = [
    "debug=fast",
    "data.max_documents=60",
    "data.vocab_size=512",
    "data.block_size=64",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "model.config.n_layer=2",
    "model.config.n_embd=64",
    "model.config.n_head=2",
    "callbacks.model_summary=null",
    "callbacks.progress_bar=null",
    "trainer.enable_progress_bar=false",
]
# The same, four steps with a validation every two (tracking and sweep tests).
QUICK = ["trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
         "trainer.num_sanity_val_steps=0", "data.max_documents=30", "data.vocab_size=512", "data.block_size=32",
         "data.batch_size=4", "data.eval_batch_size=8", "callbacks.samples=null", "callbacks.export_hf=null",
         "callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]
# Supervised fine-tuning of a small GPT-2 on uppercasing letter strings (SFT, DPO, LoRA tests).
SFT_TINY = [
    "task=sft",
    "data.source.tasks=[upper]",
    "data.source.max_length=5",
    "data.generation_examples=16",
    "data.batch_size=64",
    "model.config.n_layer=2",
    "model.config.n_embd=128",
    "model.config.n_head=4",
    "model.config.n_positions=64",
    "callbacks.model_summary=null",
    "callbacks.progress_bar=null",
    "trainer.enable_progress_bar=false",
]
# A one-layer BERT classifier on the labelled CSVs of tests/helpers/labelled_data.py.
TINY_BERT = ["task=classify", "data=local", "data.vocab_size=300", "data.max_length=16", "data.batch_size=16",
             "model.config.num_hidden_layers=1", "model.config.hidden_size=32", "model.config.intermediate_size=64",
             "model.config.num_attention_heads=2", "scheduler.num_warmup_steps=2", "optimizer.lr=3e-3",
             "callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]

# The longest files (minutes each on 2 cores), handed to the xdist workers first so that none is left for last.
LONGEST_FIRST = ("test_tracker_history.py", "test_ddp.py", "test_dpo_pipeline.py", "test_command_contract.py",
                 "test_slurm.py", "test_sharded_checkpoint.py", "test_muon.py", "test_lora.py", "test_mixture.py",
                 "test_evaluation.py", "test_resume_e2e.py", "test_remote_data.py", "test_mup_runs.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest in collection order


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenizer/packed-data cache for the whole session, as a sweep would share it."""
    return tmp_path_factory.mktemp("cache")


def compose(overrides: list[str], config_name: str = "train"):
    """The config `lmlab-train <overrides>` would run, with Hydra's runtime set up for in-process calls."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from lmlab.config import config_dir, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def train_in_process(tmp_path: Path, cache_dir: Path, overrides: list[str]):
    """Run `lmlab.train.train` in this process on `overrides`; returns (config, metric)."""
    from omegaconf import open_dict

    from lmlab.train import train

    cfg = compose([*overrides, f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}",
                   f"paths.run_dir={tmp_path / 'run'}", "run_name=test"])
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, train(cfg)


# What third-party tools print when they drop or ignore data: a test fails on it, not a user.
DROPPED_DATA = ("will be ignored",  # W&B: "Tried to log to step 10 that is less than the current step 11 ..."
                "Steps must be monotonically increasing",
                "Discarding metric",  # Lightning's MLflow logger: a string value
                "Replacing ",  # Lightning's MLflow logger: a metric name MLflow refuses, renamed
                "Found duplicate value for",  # TensorBoard's reader
                "Tried to log to step")


def assert_no_dropped_data(output: str) -> None:
    """Fail on a third-party warning that data was dropped, ignored or renamed."""
    lines = [line for line in output.splitlines() if any(pattern in line for pattern in DROPPED_DATA)]
    assert not lines, "a tracker dropped data:\n" + "\n".join(lines[:5])


def run_cli(args: list[str], cwd: Path, module: str = "lmlab.train", timeout: int = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` in a subprocess, as a user would run it; output captured as text. A console
    where a tracker says it dropped data fails the test."""
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, **(env or {})})
    assert_no_dropped_data(result.stdout + result.stderr)
    return result


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def metric_series(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) for every row of `metrics.csv` that has `key`."""
    return [(int(r["step"]), float(r[key])) for r in read_metrics(run_dir) if r.get(key)]
