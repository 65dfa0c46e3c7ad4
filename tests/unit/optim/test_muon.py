"""optimizer=muon (issue 33): Muon for the blocks' matrices and AdamW for the rest as one optimizer; its update
scale, its checkpoint state, its config errors, and runs resumed, on DDP and on FSDP equal to one process."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import HELPERS, TEST_CALLBACKS, compose, metric_series, read_metrics, run_cli
from omegaconf import OmegaConf, open_dict
from resume_helpers import SHORT, assert_same_params, completed_run, final_params

from lmlab.modules import CausalLMModule
from lmlab.optim import MUON_KEYS
from lmlab.optim.muon import MUON_GROUP, MuonWithAdamW
from lmlab.runs.validate import config_problems

TINY_MODEL = {"gpt2-tiny": ["model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2"],
              "llama-tiny": ["model=llama-tiny", "model.config.num_hidden_layers=2", "model.config.hidden_size=64",
                             "model.config.num_attention_heads=2", "model.config.num_key_value_heads=1",
                             "model.config.intermediate_size=172"]}
TINY_MODEL["llama-tiny-untied"] = [*TINY_MODEL["llama-tiny"], "model.config.tie_word_embeddings=false"]


def module(overrides: list[str], vocab_size: int = 256) -> CausalLMModule:
    cfg = compose(["optimizer=muon", *overrides])
    torch.manual_seed(0)
    return CausalLMModule(model=OmegaConf.to_container(cfg.model), scheduler=None, vocab_size=vocab_size,
                          optimizer=OmegaConf.to_container(cfg.optimizer))


@pytest.mark.parametrize("model", sorted(TINY_MODEL))
def test_blocks_matrices_go_to_muon_everything_else_to_adamw(model):
    lm = module(TINY_MODEL[model])
    optimizer = lm.configure_optimizers()
    assert isinstance(optimizer, MuonWithAdamW)
    names = {id(p): n for n, p in lm.model.named_parameters()}
    muon = {names[id(p)] for g in optimizer.param_groups if g[MUON_GROUP] for p in g["params"]}
    adamw = {names[id(p)] for g in optimizer.param_groups if not g[MUON_GROUP] for p in g["params"]}
    blocks = ("transformer.h.", "model.layers.")
    assert muon == {n for n, p in lm.model.named_parameters() if n.startswith(blocks) and p.ndim == 2}
    assert muon.isdisjoint(adamw) and muon | adamw == set(names.values())  # each trainable parameter once
    head = lm.model.get_output_embeddings().weight
    assert names[id(head)] in adamw and names[id(lm.model.get_input_embeddings().weight)] in adamw
    assert (head is lm.model.get_input_embeddings().weight) == (model != "llama-tiny-untied")
    assert any("norm" in n or "ln_" in n for n in adamw)
    for group in optimizer.param_groups:  # weight decay on matrices only; each optimizer's own hyperparameters
        assert group["weight_decay"] == (0.1 if group["params"][0].ndim == 2 else 0.0)
        assert ("ns_steps" in group) == group[MUON_GROUP] == ("betas" not in group)
    assert optimizer.muon.param_groups == [g for g in optimizer.param_groups if g[MUON_GROUP]]


def test_bert_embeddings_among_its_blocks_stay_with_adamw():
    """BERT lists its embeddings in `_no_split_modules` (the blocks FSDP shards): Muon still never gets them."""
    from transformers import BertConfig, BertForMaskedLM

    from lmlab.modules.base import weight_decay_groups
    from lmlab.optim.muon import muon_groups

    model = BertForMaskedLM(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                       intermediate_size=64, vocab_size=128))
    names = {id(p): n for n, p in model.named_parameters()}
    muon = {names[id(p)] for g in muon_groups(model, weight_decay_groups(model, 0.1)) if g[MUON_GROUP]
            for p in g["params"]}
    assert muon == {n for n, p in model.named_parameters() if n.startswith("bert.encoder.layer.") and p.ndim == 2}


@pytest.mark.parametrize("shape", [(64, 256), (256, 64), (128, 128), (384, 128)])
def test_match_rms_adamw_gives_every_matrix_an_update_rms_of_lr_times_0_2(shape):
    """torch.optim.Muon's `match_rms_adamw` scales the lr by 0.2·√max(A, B), so that an orthogonal update (RMS
    1/√max(A, B)) moves the weights by 0.2·lr RMS whatever the shape, as AdamW's typical updates (Liu et al. 2025).
    Newton–Schulz's singular values are 0.68–1.14 rather than 1: the RMS measured is 0.17·lr. `original`
    (Keller Jordan's scale) depends on the shape."""
    torch.manual_seed(0)
    grad = torch.randn(shape)
    rms = {}
    for adjust in ("match_rms_adamw", "original"):
        weight = torch.nn.Parameter(torch.randn(shape))
        before = weight.detach().clone()
        weight.grad = grad.clone()
        torch.optim.Muon([weight], lr=1e-3, weight_decay=0.0, adjust_lr_fn=adjust).step()
        rms[adjust] = (weight.detach() - before).pow(2).mean().sqrt().item() / 1e-3
    assert 0.16 < rms["match_rms_adamw"] < 0.18
    assert rms["original"] == pytest.approx(max(1, shape[0] / shape[1]) ** 0.5 / max(shape) ** 0.5 * 0.86, rel=0.05)


@pytest.mark.parametrize("model", ["gpt2-tiny", "llama-tiny"])
def test_loss_falls_and_a_restored_state_continues_exactly(model):
    """Ten steps on one batch lower the loss; the state_dict (torch's format, both optimizers' state) loaded into
    a fresh optimizer continues bitwise as the original."""
    lm = module(TINY_MODEL[model])
    optimizer = lm.configure_optimizers()
    batch = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(0))

    def step(lm: CausalLMModule, optimizer: torch.optim.Optimizer) -> float:
        loss = lm.model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    losses = [step(lm, optimizer) for _ in range(10)]
    assert losses[-1] < losses[0] - 0.5, losses
    state = optimizer.state_dict()
    assert len(state["state"]) == sum(len(g["params"]) for g in optimizer.param_groups)
    assert {k for g in state["param_groups"] if g[MUON_GROUP] for k in state["state"][g["params"][0]]} == {
        "momentum_buffer"}
    assert {k for g in state["param_groups"] if not g[MUON_GROUP] for k in state["state"][g["params"][0]]} == {
        "step", "exp_avg", "exp_avg_sq"}
    restored = copy.deepcopy(lm)
    restored_optimizer = restored.configure_optimizers()
    restored_optimizer.load_state_dict(copy.deepcopy(state))
    for _ in range(3):
        assert step(restored, restored_optimizer) == step(lm, optimizer)
    assert all(torch.equal(a, b) for a, b in zip(lm.parameters(), restored.parameters(), strict=True))


@pytest.mark.slow
def test_sharded_muon_on_two_processes_equals_torch_muon_on_whole_matrices(tmp_path):
    """Two gloo processes (tests/helpers/muon_shards.py): each gathers its shards' updates, orthogonalises the whole and
    keeps its own rows, over rows that split unevenly; the weights equal torch.optim.Muon's bitwise."""
    import subprocess
    import sys

    script = HELPERS / "muon_shards.py"
    ranks = [subprocess.Popen([sys.executable, str(script), str(rank), "2", str(tmp_path / "store")])
             for rank in (0, 1)]
    assert [rank.wait(timeout=120) for rank in ranks] == [0, 0]


def test_mup_divides_muons_lr_by_the_square_root_of_m_and_adamws_by_nothing():
    """Muon's hidden updates are orthogonal (full rank): μP keeps their spectral norm width-independent with
    lr / √m under match_rms_adamw, where Adam's need lr / m (docs/scaling.md, "Muon")."""
    lm = module([*TINY_MODEL["gpt2-tiny"], "model.mup=true", "model.mup_base_width=16", "optimizer.lr=1e-2"])
    optimizer = lm.configure_optimizers()  # m = 64 / 16 = 4
    assert sorted({(g[MUON_GROUP], g["lr"]) for g in optimizer.param_groups}) == [(False, 1e-2), (True, 5e-3)]


def test_the_keys_checked_are_the_optimizers_arguments():
    import inspect

    assert set(MUON_KEYS) == set(inspect.signature(MuonWithAdamW).parameters) - {"params"}
    assert set(compose(["optimizer=muon"]).optimizer) == set(MUON_KEYS) | {"_target_"}


@pytest.mark.parametrize(("overrides", "message"), [
    (["optimizer.lr=-1"], "optimizer.lr=-1 must be a positive learning rate"),
    (["optimizer.momentum=1.5"], "optimizer.momentum=1.5 must be in [0, 1)"),
    (["optimizer.ns_steps=0"], "optimizer.ns_steps=0 must be an integer from 1 to 99"),
    (["optimizer.adjust_lr_fn=spectral"], "optimizer.adjust_lr_fn='spectral' must be one of match_rms_adamw"),
    (["optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5] must be two numbers in [0, 1)"),
    (["+optimizer.momentun=0.9"], "optimizer.momentun is not a key of optimizer=muon"),
    (["peft=lora"], "optimizer=muon with peft"),
    (["trainer=fsdp", "trainer.strategy.cpu_offload=true"],
     "optimizer=muon does not support trainer.strategy.cpu_offload=true"),
])
def test_bad_muon_config_is_named(overrides, message):
    cfg = compose(["optimizer=muon", *overrides])
    with open_dict(cfg):
        del cfg["hydra"]
    assert any(message in problem for problem in config_problems(cfg)), config_problems(cfg)


def test_bad_muon_config_is_one_line_and_exit_2_before_the_run_directory(tmp_path):
    result = run_cli(["optimizer=muon", "optimizer.momentum=-0.1", "+optimizer.foo=1", f"run_dir={tmp_path / 'run'}"],
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: optimizer.foo is not a key of optimizer=muon (its keys: lr, weight_decay, momentum, nesterov, "
        "ns_steps, adjust_lr_fn, betas, eps, fused); optimizer.momentum=-0.1 must be in [0, 1) (e.g. 0.95)"]
    assert not (tmp_path / "run").exists()


# 12 steps of global batch 8 (epochs of 5 steps: 3 documents, limit_train_batches=5), a checkpoint and a validation
# of 15 blocks every 4 steps, gradients clipped: one run serves as the reference of the resumed, DDP and FSDP runs.
RUN = [*SHORT, "optimizer=muon", "optimizer.lr=3e-3", "data.max_documents=3", "global_batch_size=8",
       "data.eval_batch_size=5", "trainer.limit_val_batches=3", "trainer.max_steps=12", "trainer.accelerator=cpu",
       "trainer.gradient_clip_val=1.0", "callbacks.last_checkpoint.every_n_train_steps=4"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    return completed_run(tmp_path_factory.mktemp("reference"), RUN, cache_dir)


@pytest.mark.slow
def test_sigkilled_after_a_checkpoint_and_relaunched_ends_bitwise_as_the_uninterrupted_run(reference, tmp_path,
                                                                                            cache_dir):
    run_dir = tmp_path / "run"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    kill = "trainer.plugins=[{_target_:kill_after_save.KillAfterSave,steps:[8]}]"
    result = run_cli([*args, kill], cwd=tmp_path, env=TEST_CALLBACKS)
    assert result.returncode == -9, result.stderr[-3000:]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout + result.stderr
    assert_same_params(reference, run_dir)
    assert metric_series(run_dir, "val/loss") == metric_series(reference, "val/loss")
    lrs = [k for k in read_metrics(run_dir)[0] if k.startswith("lr-MuonWithAdamW")]
    assert len(lrs) == 3  # the LR monitor logs each group (Muon's; AdamW's with and without decay)


def assert_as_one_process(reference, run_dir, weights) -> None:
    """val/loss within 1e-5 of the one process's (measured: 8e-6 at most). The weights only within 2e-3 (measured:
    6e-4): torch.optim.Muon runs Newton–Schulz in bfloat16, where the last bits that a different summation order
    changes in the gradients flip roundings. Perturbing one process's gradients by 1e-7 (relative) moves the weights
    of these 12 steps by 5e-4, against 8e-6 with an fp32 Newton–Schulz and with AdamW (docs/scaling.md, "Muon");
    tests/helpers/muon_shards.py checks the gather-and-slice of the sharded path bitwise."""
    one, two = metric_series(reference, "val/loss"), metric_series(run_dir, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in two] == [4, 8, 12]
    assert torch.allclose(torch.tensor([v for _, v in two]), torch.tensor([v for _, v in one]), rtol=0, atol=1e-5)
    assert one[-1][1] < one[0][1] - 0.1  # it learned
    a = final_params(reference)
    assert a.keys() >= weights.keys() and all(torch.allclose(a[k], weights[k], rtol=0, atol=2e-3) for k in weights)


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process(reference, tmp_path, cache_dir):
    run_dir = completed_run(tmp_path, [*RUN, "trainer=ddp", "trainer.devices=2"], cache_dir)
    assert_as_one_process(reference, run_dir, final_params(run_dir))


@pytest.mark.slow
def test_fsdp_on_two_processes_killed_and_relaunched_equals_one_process(reference, tmp_path, cache_dir):
    """FSDP2 shards every matrix: Muon gathers each update whole for Newton–Schulz. The sharded checkpoint (DCP)
    holds both optimizers' state: the run SIGKILLed after step 8 resumes from it."""
    from lmlab.checkpoint.sharded import load_sharded_checkpoint

    run_dir = tmp_path / "run"
    args = [*RUN, "trainer=fsdp", "trainer.devices=2", "trainer.precision=32-true", f"run_dir={run_dir}",
            f"paths.cache_dir={cache_dir}"]
    kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=8"]
    result = run_cli([*args, *kill], cwd=tmp_path, env=TEST_CALLBACKS)
    assert result.returncode == -9, result.stderr[-3000:]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout + result.stderr
    weights = load_sharded_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    assert_as_one_process(reference, run_dir, weights)
