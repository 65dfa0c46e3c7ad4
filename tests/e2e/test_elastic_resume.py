"""Elastic resume: a run checkpointed with N processes continues with M at the same global sample."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, metric_series, run_cli
from record_batches import samples_by_step
from resume_helpers import ELASTIC, ONE, TWO, final_params, record

pytestmark = pytest.mark.slow
KILL_AFTER = 6  # mid-epoch: 34 blocks make epochs of 4 steps of 8


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
