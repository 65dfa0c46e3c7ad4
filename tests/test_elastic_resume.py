"""Elastic resume: a run checkpointed with N processes continues with M at the same global sample."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import metric_series, run_cli
from record_batches import samples_by_step
from resume_helpers import SHORT, final_params
from test_resume_e2e import TEST_CALLBACKS

pytestmark = pytest.mark.slow
KILL_AFTER = 6  # mid-epoch: 34 blocks make epochs of 4 steps of 8
# Global batch 8 on 1 process (8 x 1) or 2 (4 x 1 each), dropout off: the runs differ only by summation order.
ELASTIC = [*(a for a in SHORT if not a.startswith("trainer.limit_train_batches")), "data.max_documents=3",
           "global_batch_size=8", "trainer.accelerator=cpu", "trainer.max_steps=12", "trainer.log_every_n_steps=1"]
# debug=fast's limit_val_batches=2 counts batches of the whole validation: the same blocks on 1 process or 2
ONE, TWO = ["trainer.devices=1"], ["trainer=ddp", "trainer.devices=2"]


def record(run_dir: Path) -> list[str]:
    return ["+callbacks.record._target_=record_batches.RecordBatches", f"+callbacks.record.dirpath={run_dir}/batches"]


def train(args: list[str], run_dir: Path, cwd: Path, cache_dir: Path, kill_after: int | None = None) -> None:
    kill = [] if kill_after is None else ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep",
                                          f"+callbacks.kill.step={kill_after}"]
    result = run_cli([*ELASTIC, *args, *kill, *record(run_dir), f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"],
                     cwd=cwd, env=TEST_CALLBACKS)
    assert result.returncode == (0 if kill_after is None else -9), result.stderr[-3000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> Path:
    tmp = tmp_path_factory.mktemp("elastic-reference")
    train(ONE, tmp / "run", tmp, cache_dir)
    return tmp / "run"


@pytest.mark.parametrize(("before", "after"), [(TWO, ONE), (ONE, TWO), (TWO, [*ONE, "data.batch_size=4"])],
                         ids=["2-to-1", "1-to-2", "2-to-1-accumulating-2"])
def test_resume_on_another_number_of_processes_continues_at_the_same_sample(reference, tmp_path, cache_dir,
                                                                           before, after):
    run_dir = tmp_path / "run"
    train(before, run_dir, tmp_path, cache_dir, kill_after=KILL_AFTER)
    train(after, run_dir, tmp_path, cache_dir)

    expected = samples_by_step(reference / "batches", after=KILL_AFTER - 1)
    assert sorted(expected) == list(range(KILL_AFTER, 12))
    assert samples_by_step(run_dir / "batches", after=KILL_AFTER - 1) == expected
    for metric in ("train/loss", "val/loss"):  # no jump at the switch: every point as the uninterrupted run's
        resumed, uninterrupted = metric_series(run_dir, metric), metric_series(reference, metric)
        assert [s for s, _ in resumed] == [s for s, _ in uninterrupted] == sorted({s for s, _ in resumed})
        assert [v for _, v in resumed] == pytest.approx([v for _, v in uninterrupted], abs=1e-5), metric
    a, b = final_params(run_dir), final_params(reference)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_resume_with_another_global_batch_is_refused_before_training(reference, tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    train(ONE, run_dir, tmp_path, cache_dir, kill_after=2)
    result = run_cli([*ELASTIC, "global_batch_size=16", f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"],
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: this launch's global batch is 16 samples")
    assert "global_batch_size=8" in result.stderr
