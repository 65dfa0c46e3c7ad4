"""Cool-down branches (issue 33): a run branched at step k of a longer WSD run's stable phase, trained to its own
budget, equals bitwise a run launched with that budget from the start, also after a SIGKILL and a relaunch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, TINY, run_cli

pytestmark = pytest.mark.slow

WSD = [*TINY, "scheduler=wsd", "scheduler.num_warmup_steps=2", "scheduler.decay_fraction=0.25",
       "trainer.val_check_interval=4", "callbacks.last_checkpoint.every_n_train_steps=2",
       "callbacks.last_checkpoint.save_top_k=-1", "callbacks.samples=null", "callbacks.export_hf=null"]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def final_loss(run_dir: Path) -> float:
    return json.loads((run_dir / "summary.json").read_text())["final"]


def test_a_branch_from_the_stable_phase_equals_the_run_of_its_budget(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", TEST_CALLBACKS["PYTHONPATH"])
    args = [*WSD, f"paths.cache_dir={cache_dir}"]
    for name, steps in (("parent", 24), ("reference", 12)):  # stable until steps 18 and 9
        result = run_cli([*args, f"trainer.max_steps={steps}", f"run_dir={tmp_path / name}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    branch_from = tmp_path / "parent" / "checkpoints" / "step000008.ckpt"
    branch = [*args, "trainer.max_steps=12", f"branch_from={branch_from}"]
    result = run_cli([*branch, f"run_dir={tmp_path / 'branch'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "branch" / "branch.json").read_text()) == {
        "parent": str((tmp_path / "parent").resolve()), "checkpoint": str(branch_from.resolve()), "step": 8}

    killed = tmp_path / "killed"
    plugin = "trainer.plugins=[{_target_:kill_after_save.KillAfterSave,steps:[10]}]"
    result = run_cli([*branch, f"run_dir={killed}", plugin], cwd=tmp_path)
    assert result.returncode == -9, result.stderr[-3000:]
    result = run_cli([*branch, f"run_dir={killed}"], cwd=tmp_path)  # resumes from its own step 10, not step 8
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming from {killed}" in result.stdout + result.stderr

    reference = weights(tmp_path / "reference")
    for run in ("branch", "killed"):
        branched = weights(tmp_path / run)
        assert branched.keys() == reference.keys()
        assert all(torch.equal(branched[k], reference[k]) for k in reference), run
        assert final_loss(tmp_path / run) == final_loss(tmp_path / "reference")
    assert not torch.equal(weights(tmp_path / "parent")["model.transformer.wte.weight"],
                           reference["model.transformer.wte.weight"])
