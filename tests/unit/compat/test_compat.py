"""The private APIs lmlab uses still exist, in the library versions they were checked against.

When a library is upgraded this fails first: re-check the uses listed in `lmlab.compat.<library>`, then
update its CHECKED_VERSION.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version

import pytest


@pytest.mark.parametrize(("module", "distribution"),
                         [("lightning", "lightning"), ("submitit", "submitit"), ("torch_optim", "torch"),
                          ("lm_eval", "lm_eval")])
def test_installed_version_is_the_checked_one(module, distribution):
    compat = importlib.import_module(f"lmlab.compat.{module}")
    assert version(distribution).split("+")[0] == compat.CHECKED_VERSION, (
        f"{distribution} {version(distribution)} is installed; lmlab.compat.{module} was checked against "
        f"{compat.CHECKED_VERSION}: re-check its private names, then update CHECKED_VERSION")


def test_lightning_private_names_resolve_and_behave():
    import torch
    from lightning.pytorch.strategies.launchers import subprocess_script

    from lmlab.compat import lightning as compat

    assert hasattr(subprocess_script, "_hydra_subprocess_cmd")
    states = compat.collect_rng_states(include_cuda=False)
    first = torch.rand(3)
    compat.set_rng_states(states)
    assert torch.equal(torch.rand(3), first)
    assert compat.convert_params({"a": 1}) == {"a": 1}
    assert compat.optimizer_handles_unscaling(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])) is False


def test_lightning_checkpoints_keep_the_loop_counters_where_lmlab_reads_them(tmp_path):
    import lightning as L
    import torch
    from lightning.pytorch.demos.boring_classes import BoringModel

    from lmlab.compat import lightning as compat

    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(BoringModel())
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    loops = torch.load(tmp_path / "c.ckpt", weights_only=False)["loops"][compat.FIT_LOOP_KEY]
    assert loops[compat.BATCH_PROGRESS_KEY]["total"]["processed"] == 3


def test_submitit_private_name_exists():
    from submitit.slurm.slurm import SlurmInfoWatcher

    assert callable(SlurmInfoWatcher._make_command)


def test_lm_eval_asks_its_evaluator_for_the_git_hash_and_the_quiet_probe_says_nothing(tmp_path, capfd, monkeypatch):
    import lm_eval.evaluator

    from lmlab.compat.lm_eval import install_quiet_git_hash, quiet_git_hash

    assert callable(lm_eval.evaluator.get_git_commit_hash)  # what install_quiet_git_hash replaces
    monkeypatch.chdir(tmp_path)  # not a git checkout
    monkeypatch.setattr(lm_eval.evaluator, "get_git_commit_hash", lm_eval.evaluator.get_git_commit_hash)
    install_quiet_git_hash()
    assert lm_eval.evaluator.get_git_commit_hash() is None and quiet_git_hash() is None
    assert "fatal" not in capfd.readouterr().err
