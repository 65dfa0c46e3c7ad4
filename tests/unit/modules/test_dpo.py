"""task=dpo: the reference (a frozen copy outside checkpoints; under LoRA the policy without its adapters, no copy;
precomputed log-probabilities, no model) and bad inputs (the data's own checks, chosen equal to rejected included:
tests/unit/data/test_preference_data.py)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from test_preference_vs_trl import ADAMW, TINY_GPT2, pairs  # noqa: F401  (a fixture)

from lmlab.data import PreferenceDataModule, SyntheticPreferences
from lmlab.models.lora import merged
from lmlab.modules import DPOModule
from lmlab.modules.options import PREFERENCE_LOSSES, REFERENCE_FREE_LOSSES
from lmlab.modules.preference_losses import LOSS_TYPES, REFERENCE_FREE
from lmlab.modules.reference_logps import attach_reference_logps

LORA = {"_target_": "peft.LoraConfig", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": None,
        "bias": "none"}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_reference_is_left_out_of_checkpoints_and_rebuilt_from_the_start(pairs):  # noqa: F811
    """A checkpoint holds the policy only; loading it (strictly) keeps the reference this module was built with."""
    tokenizer, _ = pairs
    torch.manual_seed(0)
    trained = DPOModule(TINY_GPT2, optimizer=ADAMW, tokenizer=tokenizer)
    with torch.no_grad():
        for p in trained.model.parameters():
            p.add_(1.0)
    state = trained.state_dict()
    assert state and not any(k.startswith("reference.") for k in state)
    torch.manual_seed(0)
    resumed = DPOModule(TINY_GPT2, optimizer=ADAMW, tokenizer=tokenizer)
    start = {k: v.clone() for k, v in resumed.reference.model.state_dict().items()}
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed.model.state_dict()[k], v) for k, v in trained.model.state_dict().items())
    assert all(torch.equal(resumed.reference.model.state_dict()[k], v) for k, v in start.items())
    assert not any(p.requires_grad for p in resumed.reference.parameters())
    resumed.train()
    assert not resumed.reference.training  # never dropout in the reference


def test_lora_holds_no_second_model_and_gives_a_full_copys_loss(pairs):  # noqa: F811
    """Acceptance 3: parameters = policy + adapters (a full reference doubles the policy), and the loss of a batch
    equals the one against a full frozen copy of the base."""
    tokenizer, batch = pairs
    torch.manual_seed(0)
    full = DPOModule(TINY_GPT2, optimizer=ADAMW, tokenizer=tokenizer)
    torch.manual_seed(0)
    lora = DPOModule(TINY_GPT2, optimizer=ADAMW, tokenizer=tokenizer, peft=LORA)
    policy = count(full.model)
    adapters = sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)
    assert lora.reference is None and adapters > 0
    assert count(lora) == policy + adapters
    assert count(full) == 2 * policy

    with torch.no_grad():  # move the adapter away from zero, and make the full policy the same function
        for name, p in lora.model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 0.1)
        full.model.load_state_dict(merged(lora.model).state_dict())
    ours, reference = lora.metrics(lora.pair_loss(batch)), full.metrics(full.pair_loss(batch))
    assert 0 < float(reference["rewards/accuracies"].mean()) < 1
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("peft", [None, LORA], ids=["full", "lora"])
def test_precomputed_reference_gives_the_live_references_loss_and_holds_no_model(tmp_path, peft):
    """task.module.precompute_reference: the starting policy scores every pair once (cached by its weights and
    the pairs); on a batch of a moved policy the loss and rewards equal those against the live reference within
    1e-6, and the module holds the policy's parameters only."""
    import lightning as L

    datamodule = PreferenceDataModule(SyntheticPreferences(train_examples=24, validation_examples=8),
                                      vocab_size=261, max_length=64, eval_batch_size=5, cache_dir=str(tmp_path))
    datamodule.setup()
    modules = {}
    for precompute in (False, True):
        torch.manual_seed(0)
        modules[precompute] = DPOModule(TINY_GPT2, optimizer=ADAMW, tokenizer=datamodule.tokenizer, peft=peft,
                                        precompute_reference=precompute)
    live, precomputed = modules[False], modules[True]
    precomputed.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
    attach_reference_logps(precomputed, datamodule)  # what its setup does when Lightning fits it
    assert precomputed.reference is None and precomputed.networks() == [precomputed.model]
    assert count(precomputed) == count(precomputed.model) == (count(live) if peft else count(live) // 2)

    torch.manual_seed(1)
    with torch.no_grad():  # the policy moves away from the reference, the same way in both
        for (_, a), (_, b) in zip(live.model.named_parameters(), precomputed.model.named_parameters(), strict=True):
            if a.requires_grad and (not peft or "lora_B" in _):
                noise = torch.randn_like(a) * 0.05
                a.add_(noise)
                b.add_(noise)
    batch = datamodule.collator()([datamodule.datasets["train"][i] for i in range(6)])
    assert "ref_chosen_logps" in batch
    ours, theirs = precomputed.metrics(precomputed.pair_loss(batch)), live.metrics(live.pair_loss(batch))
    assert float(theirs["rewards/margins"].abs().min()) > 1e-4  # not at the reference any more
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6)
    assert len([p for p in (tmp_path / "reference_logps").iterdir() if p.is_dir()]) == 2  # train, validation


def test_loss_names_are_one_list():
    assert set(LOSS_TYPES) == set(PREFERENCE_LOSSES)
    assert set(REFERENCE_FREE) == set(REFERENCE_FREE_LOSSES)


@pytest.mark.parametrize(("overrides", "message"), [
    (["task.module.beta=0", "task.module.loss_type=kto"],
     "task.module.loss_type='kto' must be one of sigmoid, hinge, ipo, simpo; task.module.beta=0 must be a positive"),
    (["data=preference_local", "data.source.path={data}"], "no column data.chosen_column='chosen'"),
    (["data=preference_local", "data.source.path={same}"], "chosen"),  # every pair's chosen == rejected
    (["task.module.loss_type=simpo", "task.module.precompute_reference=true"], "nothing to precompute"),
])
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path, overrides, message):
    for name, row in (("data", {"prompt": "a", "better": "b", "rejected": "c"}),
                      ("same", {"prompt": "a", "chosen": "b", "rejected": "b"})):
        (tmp_path / name).mkdir()
        for split in ("train", "validation"):
            (tmp_path / name / f"{split}.jsonl").write_text(json.dumps(row))
    overrides = [o.format(data=tmp_path / "data", same=tmp_path / "same") for o in overrides]
    run_dir = tmp_path / "run"
    result = run_cli(["task=dpo", *overrides, f"run_dir={run_dir}", f"paths.cache_dir={tmp_path / 'cache'}"],
                     tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[-1].startswith("error:") and message in lines[-1], result.stderr[-2000:]
    assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in result.stderr
    assert not run_dir.exists()
