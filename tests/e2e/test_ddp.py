"""Acceptance 4: DDP on CPU (gloo) through the CLI, as a user launches it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from conftest import compose, metric_series, run_cli
from resume_helpers import (
    SHORT,
    assert_same_params,
    completed_run,
    final_params,
    kill_group,
    launch,
    wait_for_step,
)

pytestmark = pytest.mark.slow

# Global batch 8 on 1 or 2 processes. 3 documents: 34 training blocks (4 steps an epoch) and 117
# validation blocks, of which 3 batches of 5 are evaluated: 15 blocks (an odd number) on any number of
# processes, as debug=fast's limit_val_batches counts them.
DDP = [*SHORT, "data.max_documents=3", "global_batch_size=8", "data.eval_batch_size=5",
       "trainer.limit_val_batches=3", "trainer.log_every_n_steps=1", "trainer.accelerator=cpu",
       "callbacks.last_checkpoint.save_top_k=-1"]  # keep every step's checkpoint (for the validation check)


@pytest.fixture(scope="module")
def single(tmp_path_factory, cache_dir) -> Path:
    return completed_run(tmp_path_factory.mktemp("single"), DDP, cache_dir)


@pytest.fixture(scope="module")
def two_process(tmp_path_factory, cache_dir) -> Path:
    return completed_run(tmp_path_factory.mktemp("ddp"), [*DDP, "trainer=ddp"], cache_dir)


@pytest.mark.parametrize("metric", ["train/loss", "val/loss"])
def test_ddp_logs_the_metrics_of_one_process_with_the_same_global_batch(single, two_process, metric):
    """The two ranks' half batches are the one process's batch (lmlab.distributed.train_sampler): train/loss
    is the mean over the global batch (lmlab.modules.step_loss), val/loss is over the same 15 blocks
    (lmlab.distributed.eval_sampler), so the logs differ only by floating-point summation order."""
    one, two = metric_series(single, metric), metric_series(two_process, metric)
    assert [s for s, _ in one] == [s for s, _ in two] and len(one) >= 5
    assert torch.allclose(torch.tensor([v for _, v in one]), torch.tensor([v for _, v in two]), rtol=0, atol=1e-5)
    assert one[-1][1] < one[0][1] - 0.1


def test_ddp_weights_match_one_process_with_the_same_global_batch(single, two_process):
    a, b = final_params(single), final_params(two_process)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


def test_ddp_validation_counts_every_example_once(two_process, cache_dir):
    """val/loss logged by 2 processes equals one process evaluating the same weights on the same 15 blocks."""
    import lightning as L
    from hydra.utils import instantiate

    cfg = compose([*DDP, f"paths.cache_dir={cache_dir}"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("validate")
    assert len(datamodule.datasets["validation"]) > 15
    (step, logged), *_ = metric_series(two_process, "val/loss")  # the first validation, after 4 steps
    ckpt = two_process / "checkpoints" / f"step{step:06d}.ckpt"  # saved after step 4, before its validation
    from lmlab.modules import CausalLMModule

    module = CausalLMModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, limit_val_batches=3,
                        enable_model_summary=False, enable_checkpointing=False)
    (result,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    assert result["val/loss"] == pytest.approx(logged, rel=1e-5)


def test_ddp_run_killed_and_resumed_with_two_processes_is_exact(two_process, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    args = [*DDP, "trainer=ddp", f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    with launch(args, tmp_path, tmp_path / "train.log") as process:
        wait_for_step(run_dir, 7, process)
        kill_group(process)
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout + result.stderr
    assert_same_params(two_process, run_dir)


def test_ddp_single_run_and_multirun_leave_one_run_directory_each(two_process, tmp_path, cache_dir):
    assert sorted(p.name for p in two_process.parent.iterdir()) == ["run"]
    assert [p.name for p in two_process.glob("*.log")] == ["train.log"]
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir()
    result = run_cli(["-m", *DDP, "trainer=ddp", "trainer.max_steps=2", "optimizer.lr=0.001,0.002",
                      f"paths.cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # no second sweep folder, no stray runs
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "finished.json").is_file()
        assert [p.name for p in (tmp_path / "sweep" / job).glob("*.log")] == ["train.log"]
        assert len(metric_series(tmp_path / "sweep" / job, "train/loss")) >= 1


def test_two_nodes_over_loopback_complete(tmp_path, cache_dir):
    """Two `torchrun --nnodes=2` processes on 127.0.0.1, one process each."""
    args = [*DDP, "trainer=ddp_multinode", "trainer.devices=1", "trainer.max_steps=3",
            f"run_dir={tmp_path / 'run'}", f"paths.cache_dir={cache_dir}"]
    nodes = [launch_torchrun(rank, args, tmp_path) for rank in (0, 1)]
    try:
        for node in nodes:
            assert node.wait(timeout=600) == 0, (tmp_path / "node0.log").read_text()[-3000:]
    finally:
        for node in nodes:
            if node.poll() is None:
                kill_group(node)
    assert (tmp_path / "run" / "finished.json").is_file()
    assert [s for s, _ in metric_series(tmp_path / "run", "train/loss")] == [1, 2, 3]


def launch_torchrun(node_rank: int, args: list[str], cwd: Path):
    import subprocess

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                f"--node-rank={node_rank}", "--master-addr=127.0.0.1", "--master-port=29581"]
    with open(cwd / f"node{node_rank}.log", "w") as log:
        return subprocess.Popen([*torchrun, "-m", "lmlab.train", *args], cwd=cwd, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.parametrize(("overrides", "gpus", "refused"), [
    (["trainer=ddp"], 0, False),                        # no GPU: auto runs the 2 processes on the CPU (gloo)
    (["trainer=ddp"], 1, True),                         # the 1-GPU machine of the GPU kit's README
    (["trainer=ddp", "trainer.accelerator=gpu"], 2, False),
    (["trainer=gpu"], 1, False),
    (["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=4"], 1, False),
])
def test_more_gpus_than_the_machine_has_is_one_line_before_training(monkeypatch, overrides, gpus, refused):
    from lmlab.distributed import check_gpu_count
    from lmlab.errors import LmlabError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    trainer = compose(overrides).trainer
    if refused:
        with pytest.raises(LmlabError, match=r"trainer\.devices=2 asks for 2 GPUs but this machine has 1: set "
                                             r"trainer\.devices=1 or trainer\.devices=auto"):
            check_gpu_count(trainer)
    else:
        check_gpu_count(trainer)


def test_ddp_classification_logs_each_steps_metrics_over_both_ranks(tmp_path, cache_dir):
    """A classifier's per-step train metrics (accuracy, F1, MCC) and loss on 2 processes equal the 1-process run's
    with the same global batch: each is over the whole global batch, not the logging rank's half."""
    args = ["task=classify", "data.max_documents=64", "data.vocab_size=512", "data.max_length=32",
            "global_batch_size=8", "model.config.num_hidden_layers=1", "model.config.hidden_size=32",
            "model.config.num_attention_heads=2", "model.config.intermediate_size=64", "trainer.max_steps=8",
            "model.config.hidden_dropout_prob=0", "model.config.attention_probs_dropout_prob=0",  # no per-rank RNG
            "trainer.val_check_interval=8", "trainer.log_every_n_steps=1", "trainer.accelerator=cpu",
            "optimizer.lr=3e-3", "scheduler.num_warmup_steps=0", "callbacks.export_hf=null",
            "callbacks.progress_bar=null", "callbacks.model_summary=null", f"paths.cache_dir={cache_dir}"]
    runs = {}
    for name, extra in (("single", []), ("ddp", ["trainer=ddp", "trainer.devices=2"])):
        runs[name] = tmp_path / name
        result = run_cli([*args, *extra, f"run_dir={runs[name]}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    for metric in ("train/loss", "train/accuracy", "train/f1_macro", "train/mcc"):
        one, two = metric_series(runs["single"], metric), metric_series(runs["ddp"], metric)
        assert [s for s, _ in one] == [s for s, _ in two] == list(range(1, 9)), metric
        assert torch.allclose(torch.tensor([v for _, v in two]), torch.tensor([v for _, v in one]), atol=1e-5), metric
    assert len({v for _, v in metric_series(runs["single"], "train/accuracy")}) > 1  # not a constant
