"""W&B naming, grouping and run-id reuse; the offline files of a real run read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import QUICK, TEST_CALLBACKS, compose, metric_series, train_in_process
from wandb_offline import offline_run

from lmlab.tracking.wandb_logger import run_id, wandb_group, wandb_run_name

# Smaller than conftest.TINY, and valid for every model (no model.config keys).


def test_run_name_shortens_keys_and_drops_excluded_ones():
    overrides = ["model=llama-tiny", "optimizer.lr=3e-4", "resume=false", "+trainer.precision=bf16-mixed"]
    assert wandb_run_name(overrides) == "model=llama-tiny,lr=3e-4,precision=bf16-mixed"


def test_run_name_keeps_full_keys_when_the_short_ones_clash():
    name = wandb_run_name(["data.batch_size=8", "trainer.batch_size=2", "optimizer.lr=1e-3"])
    assert name == "data.batch_size=8,trainer.batch_size=2,lr=1e-3"


def test_run_name_without_overrides_is_the_default():
    assert wandb_run_name(["hydra.verbose=true", "resume=false"], default="clm") == "clm"


def test_group_is_the_sweep_in_a_multirun_and_the_experiment_otherwise():
    assert wandb_group("clm", multirun=True, sweep_name="lr_sweep") == "clm-lr_sweep"
    assert wandb_group("clm", multirun=False, sweep_name="lr_sweep") == "clm"


def test_run_id_is_kept_in_the_run_dir_and_reused_only_when_resuming(tmp_path):
    first = run_id(tmp_path, resume=True, write=True)
    assert (tmp_path / "wandb_id.txt").read_text().strip() == first
    assert run_id(tmp_path, resume=True, write=True) == first
    assert run_id(tmp_path, resume=False, write=False) != first


def test_secrets_are_redacted_from_logged_configs_but_token_settings_are_not():
    from lmlab.utils.provenance import redact

    config = {"hub": {"hf_token": "hf_abc", "WANDB_API_KEY": "k", "password": "p"},
              "data": {"tokenizer": "gpt2", "tokenizer_train_chars": 1000, "token_ids": {"pad": 1}}}
    assert redact(config) == {"hub": {"hf_token": "***", "WANDB_API_KEY": "***", "password": "***"},
                              "data": {"tokenizer": "gpt2", "tokenizer_train_chars": 1000, "token_ids": {"pad": 1}}}


def test_composed_logger_config_names_and_groups_the_run():
    cfg = compose(["logger=wandb", "model=llama-tiny", "optimizer.lr=3e-4", "paths.cache_dir=/tmp/x"])
    assert cfg.logger.wandb.name == "model=llama-tiny,lr=3e-4"  # paths.* are excluded like in run names
    assert cfg.logger.wandb.group == "clm"
    assert cfg.logger.wandb.job_type == "clm"
    assert list(cfg.logger.wandb.tags) == ["clm", "llama-tiny"]
    in_a_sweep = compose(["logger=wandb", "model=llama-tiny", "hydra.mode=MULTIRUN", "sweep_name=lr_sweep"])
    assert in_a_sweep.logger.wandb.group == "clm-lr_sweep"


def _finish() -> None:
    """Finish the W&B run and stop wandb's service process: only then are its offline files complete."""
    import wandb

    from lmlab.tracking.wandb_logger import finish_wandb

    finish_wandb()
    wandb.teardown()


def _wandb_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.mark.timeout(600)
def test_offline_run_holds_group_name_config_history_and_a_rerun_continues_it(tmp_path, cache_dir):
    overrides = [*QUICK, "logger=wandb", "model=llama-tiny", "optimizer.lr=2e-3"]
    try:
        cfg, _ = train_in_process(tmp_path, cache_dir, overrides)
    finally:
        _finish()
    run_dir = Path(cfg.paths.run_dir)
    [first_file] = _wandb_files(run_dir)
    run = offline_run(first_file)
    assert run["id"] == (run_dir / "wandb_id.txt").read_text().strip()
    assert run["group"] == "clm" and run["job_type"] == "clm"
    assert run["name"].endswith(",model=llama-tiny,lr=2e-3")
    assert run["config"]["optimizer"]["lr"] == 2e-3 and run["config"]["model"]["name"] == "llama-tiny"
    assert run["config"]["task_name"] == "clm"  # the whole resolved config, not just the module's hparams
    assert run["config"]["data"]["tokenizer_train_chars"] == cfg.data.tokenizer_train_chars  # not mistaken for a secret
    # one config: lmlab's, plus what is not a config key (from the tokenizer) under `module`; no second
    # record of the module's hyperparameters with derived values at the top level
    assert not {"fused_loss", "token_ids", "vocab_size", "peft", "optimizer/lr"} & set(run["config"])
    expected = {*cfg.keys(), "module", "cuda_visible_devices"} - {"hydra"}  # the run's GPUs (a sweep's job)
    assert set(run["config"]) == expected | {"_wandb"} & set(run["config"])
    assert run["config"]["module"]["vocab_size"] >= cfg.data.vocab_size
    assert "pad_token_id" in run["config"]["module"]["token_ids"]
    history = [(row["trainer/global_step"], row["val/loss"]) for row in run["history"] if "val/loss" in row]
    assert history == [(step, pytest.approx(value)) for step, value in metric_series(run_dir, "val/loss")]
    assert run["summary"]["best/val/loss"] == pytest.approx(min(v for _, v in history))

    # Continuing the run from its last checkpoint (here: a finished run extended by 4 steps) continues the
    # same W&B run.
    try:
        train_in_process(tmp_path, cache_dir, [*overrides, "resume=force", "trainer.max_steps=8"])
    finally:
        _finish()
    files = _wandb_files(run_dir)
    assert len(files) == 2
    resumed = offline_run(next(f for f in files if f != first_file))
    assert resumed["id"] == run["id"] and resumed["group"] == "clm"
    resumed_steps = [row["trainer/global_step"] for row in resumed["history"] if "val/loss" in row]
    assert resumed_steps and min(resumed_steps) > max(step for step, _ in history)  # it went on, not over


@pytest.mark.slow
def test_each_sweep_job_decides_offline_for_its_own_reason_and_leaves_the_environment_as_it_was(tmp_path, cache_dir):
    """Job 0 goes offline without an API key; Lightning's offline logger then sets WANDB_MODE=dryrun in the
    process, which jobs 1 and 2 must not see (they would report it as their reason, and stay offline)."""
    import os
    import subprocess
    import sys


    record = tmp_path / "wandb_mode.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    env.update(TEST_CALLBACKS, HOME=str(tmp_path))  # no ~/.netrc: no key
    args = ["-m", *QUICK, "trainer.max_steps=2", "logger=wandb", "optimizer.lr=1e-3,2e-3,3e-3",
            f"paths.cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "+hydra.callbacks.record._target_=record_environment.RecordEnvironment",
            "+hydra.callbacks.record.key=WANDB_MODE", f"+hydra.callbacks.record.path={record}"]
    result = subprocess.run([sys.executable, "-m", "lmlab.train", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("── optimizer") == 1  # the config tree once per sweep (each job has config.yaml)
    for job in ("0", "1", "2"):
        log = (tmp_path / "sweep" / job / "train.log").read_text()
        reasons = [line.split("W&B: ", 1)[1] for line in log.splitlines() if "W&B: " in line]
        assert reasons == ["offline (no W&B API key (set WANDB_API_KEY or run `wandb login`))"], job
    assert record.read_text().split("\n")[:-1] == ["start <unset>", "after-job-0 <unset>", "after-job-1 <unset>",
                                                  "after-job-2 <unset>", "end <unset>"]


def test_w_and_b_names_show_device_counts_and_short_floats():
    name = wandb_run_name(["trainer.devices=2", "optimizer.lr=0.000256077385703473", "seed=12345678901"])
    assert name == "devices=2,lr=0.000256,seed=12345678901"
    assert wandb_run_name(["trainer.devices=1"]) == "devices=1"
