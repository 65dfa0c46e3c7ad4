"""Resume planning, global batch arithmetic and atomic checkpoint writes (fast, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import compose
from omegaconf import OmegaConf

from lmlab.checkpoint.files import AtomicCheckpointIO
from lmlab.checkpoint.resume import config_changes, newest_valid_checkpoint, plan_resume, resume_mode
from lmlab.distributed import split_global_batch, world_size
from lmlab.errors import LmlabError
from lmlab.parallel.fsdp_config import require_sharding_strategy


def save(path: Path, step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.full((64,), float(step))}}, path)
    return path


def cfg_for(run_dir: Path, **keys):
    return OmegaConf.create({"resume": "auto", "ckpt_path": None, "paths": {"run_dir": str(run_dir)}, **keys})


@pytest.mark.parametrize(("value", "mode"), [(True, "auto"), ("auto", "auto"), ("force", "force"),
                                             (False, "never"), ("never", "never")])
def test_resume_modes(value, mode):
    assert resume_mode(value) == mode


def test_unknown_resume_mode_names_the_key():
    with pytest.raises(LmlabError, match="resume='sometimes'"):
        resume_mode("sometimes")


def test_newest_valid_checkpoint_skips_a_truncated_newest(tmp_path):
    save(tmp_path / "checkpoints" / "step000004.ckpt", 4)
    save(tmp_path / "checkpoints" / "step000005.ckpt", 5)
    last = save(tmp_path / "checkpoints" / "last.ckpt", 6)
    assert newest_valid_checkpoint(tmp_path)[0] == last
    last.write_bytes(last.read_bytes()[:-100])
    newest, step, skipped = newest_valid_checkpoint(tmp_path)
    assert newest == tmp_path / "checkpoints" / "step000005.ckpt" and step == 5
    assert len(skipped) == 1 and "last.ckpt" in skipped[0]


def test_slurm_hpc_checkpoint_is_a_candidate(tmp_path):
    save(tmp_path / "checkpoints" / "last.ckpt", 3)
    hpc = save(tmp_path / "hpc_ckpt_1.ckpt", 7)
    assert newest_valid_checkpoint(tmp_path)[0] == hpc


def test_plan_fresh_resume_and_finished(tmp_path):
    assert plan_resume(cfg_for(tmp_path), tmp_path).ckpt_path is None
    ckpt = save(tmp_path / "checkpoints" / "last.ckpt", 3)
    assert plan_resume(cfg_for(tmp_path), tmp_path).ckpt_path == str(ckpt)
    (tmp_path / "finished.json").write_text(json.dumps({"global_step": 3, "metric": 1.5}))
    finished = plan_resume(cfg_for(tmp_path), tmp_path)
    assert finished.finished["metric"] == 1.5 and finished.ckpt_path is None
    forced = plan_resume(cfg_for(tmp_path, resume="force"), tmp_path)
    assert forced.finished is None and forced.ckpt_path == str(ckpt)


def test_resume_never_refuses_to_overwrite_an_earlier_run(tmp_path):
    assert plan_resume(cfg_for(tmp_path, resume=False), tmp_path).ckpt_path is None
    save(tmp_path / "checkpoints" / "last.ckpt", 3)
    with pytest.raises(LmlabError, match="already holds checkpoints"):
        plan_resume(cfg_for(tmp_path, resume="never"), tmp_path)


def test_explicit_ckpt_path_is_checked(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LmlabError, match="ckpt_path=.*bad.ckpt"):
        plan_resume(cfg_for(tmp_path, ckpt_path=str(bad)), tmp_path)
    good = save(tmp_path / "elsewhere" / "x.ckpt", 2)
    assert plan_resume(cfg_for(tmp_path, ckpt_path=str(good)), tmp_path).ckpt_path == str(good)


def test_sharded_checkpoints_resume_under_fsdp_only_and_an_unfinished_one_is_skipped(tmp_path):
    """A torch DCP directory (`trainer=fsdp`) beside an older file: chosen when its manifest matches, refused in
    one line under another strategy (skipping it would restart from an earlier step), skipped when its write did
    not finish (no manifest) or a shard differs from it."""
    import torch.distributed.checkpoint as dcp

    from lmlab.checkpoint.integrity import file_sha256, write_manifest

    older = save(tmp_path / "checkpoints" / "step000002.ckpt", 2)
    sharded = tmp_path / "checkpoints" / "last.ckpt"
    dcp.save({"state_dict": {"w": torch.ones(4)}}, checkpoint_id=sharded, no_dist=True)
    torch.save({"global_step": 4}, sharded / "meta.pt")
    fsdp = {"trainer": {"strategy": {"_target_": "lmlab.parallel.fsdp.FSDPStrategy"}}}

    assert plan_resume(cfg_for(tmp_path, **fsdp), tmp_path).ckpt_path == str(older)  # no manifest yet: skipped
    write_manifest(sharded, {p.name: file_sha256(p) for p in sharded.iterdir()})
    plan = plan_resume(cfg_for(tmp_path, **fsdp), tmp_path)
    assert (plan.ckpt_path, plan.step) == (str(sharded), 4)
    for cfg in (cfg_for(tmp_path), cfg_for(tmp_path, ckpt_path=str(sharded))):
        with pytest.raises(LmlabError, match="last.ckpt is a sharded checkpoint.*resume it with trainer=fsdp"):
            require_sharding_strategy(cfg, Path(plan_resume(cfg, tmp_path).ckpt_path))  # as Run.claim checks it
    shard = next(sharded.glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:-1] + b"x")
    plan = plan_resume(cfg_for(tmp_path, **fsdp), tmp_path)
    assert plan.ckpt_path == str(older) and shard.name in plan.skipped[0]


def test_config_changes_are_reported_against_the_saved_config(tmp_path):
    save(tmp_path / "checkpoints" / "last.ckpt", 3)
    OmegaConf.save(cfg_for(tmp_path, optimizer={"lr": 0.001}, trainer={"max_steps": 10}), tmp_path / "config.yaml")
    cfg = cfg_for(tmp_path, optimizer={"lr": 0.002}, trainer={"max_steps": 10}, seed=1)
    cfg.paths.run_dir = "/moved"  # where a run lives is not a change to what it trains
    assert plan_resume(cfg, tmp_path).config_changes == ["optimizer.lr: 0.001 -> 0.002", "seed: '<unset>' -> 1"]


def test_config_changes_ignore_launch_keys():
    assert config_changes({"resume": "auto", "a": {"b": 1}}, {"resume": "force", "a": {"b": 1}}) == []
    watched = {"sweep_name": "2026-11-25_23-37-26", "logger": {"wandb": {"name": "x"}}, "data": {"num_workers": 0}}
    relaunched = {"sweep_name": "2026-11-25_23-37-51", "logger": {"wandb": {"name": "y"}}, "data": {"num_workers": 4}}
    assert config_changes(watched, relaunched) == []


@pytest.mark.parametrize(("global_batch", "world", "max_batch", "expected"), [
    (32, 1, 32, (32, 1)), (32, 2, 32, (16, 1)), (32, 2, 8, (8, 2)), (24, 2, 8, (6, 2)), (64, 4, 4, (4, 4)),
])
def test_split_global_batch(global_batch, world, max_batch, expected):
    batch, accumulate = split_global_batch(global_batch, world, max_batch)
    assert (batch, accumulate) == expected and batch * accumulate * world == global_batch


def test_global_batch_must_divide_over_processes():
    with pytest.raises(LmlabError, match="global_batch_size=30 .* 4 training processes"):
        split_global_batch(30, 4, 8)


def test_world_size_from_devices_and_nodes():
    assert world_size(2, 3) == 6 and world_size([0, 1], 1) == 2 and world_size("4", 2) == 8
    with pytest.raises(LmlabError, match="trainer.devices"):
        world_size("auto", 1)


def test_global_batch_size_sets_batch_and_accumulation():
    from lmlab.distributed import apply_global_batch_size

    cfg = compose(["global_batch_size=64", "data.batch_size=16", "trainer.devices=2"])
    apply_global_batch_size(cfg)
    assert (cfg.data.batch_size, cfg.trainer.accumulate_grad_batches) == (16, 2)


def test_run_dir_override_places_the_run(tmp_path):
    cfg = compose([f"run_dir={tmp_path / 'here'}"])
    assert cfg.hydra.run.dir == str(tmp_path / "here")
    assert compose([]).hydra.run.dir.endswith("/clm/default")


def test_atomic_save_keeps_the_old_file_when_a_write_fails(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1}, path)
    with pytest.raises(Exception):  # noqa: B017 - torch.save of an unpicklable object, after a partial write
        io.save_checkpoint({"global_step": 2, "big": torch.zeros(1000), "bad": lambda: 0}, path)
    assert torch.load(path, weights_only=False)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.ckpt.sha256"]


def test_validation_interval_counts_optimizer_steps_under_accumulation():
    from lmlab.distributed import apply_global_batch_size, validate_every_n_steps

    cfg = compose(["global_batch_size=8", "data.batch_size=4", "trainer.val_check_interval=5"])
    apply_global_batch_size(cfg)
    validate_every_n_steps(cfg)
    assert cfg.trainer.accumulate_grad_batches == 2 and cfg.trainer.val_check_interval == 10  # micro-batches


def test_resume_force_that_finds_nothing_says_so_in_one_line_naming_where_it_looked(tmp_path, caplog):
    from lmlab.checkpoint.resume import report

    save(tmp_path / "debug-fast" / "checkpoints" / "last.ckpt", 10)  # the run the user meant
    run_dir = tmp_path / "debug-fast_on_budget_change-continue"
    plan = plan_resume(cfg_for(run_dir, resume="force"), run_dir)
    assert plan.ckpt_path is None and plan.forced_fresh
    with caplog.at_level("INFO", logger="lmlab.checkpoint.resume"):
        report(plan, run_dir)
    [line] = caplog.messages
    assert "resume=force found no checkpoint" in line and str(run_dir / "checkpoints") in line
    assert "new run, trained from step 0" in line and "debug-fast (continue one with run_name=" in line
    assert not plan_resume(cfg_for(run_dir), run_dir).forced_fresh  # resume=auto starting afresh is the usual case


def test_resume_loads_last_ckpt_when_the_best_checkpoint_is_of_the_same_step(tmp_path):
    """docs/resume.md: a relaunch continues from last.ckpt (the best one, written after it at the same step, ties)."""
    last = save(tmp_path / "checkpoints" / "last.ckpt", 20)
    save(tmp_path / "checkpoints" / "step000020.ckpt", 20)
    save(tmp_path / "checkpoints" / "best-step000020.ckpt", 20)
    assert plan_resume(cfg_for(tmp_path), tmp_path).ckpt_path == str(last)
