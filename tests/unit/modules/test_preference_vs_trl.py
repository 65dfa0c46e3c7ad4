"""Acceptance 1 of issue 34: lmlab's preference losses and logged metrics equal TRL's own trainers' (not a copy of
their code) on the same tiny model, weights and batch: DPOTrainer for sigmoid, hinge and ipo, CPOTrainer's SimPO,
RewardTrainer for reward models."""

from __future__ import annotations

import datasets
import pytest
import torch

from lmlab.contracts import IGNORE_INDEX
from lmlab.data import PreferenceDataModule, SyntheticPreferences
from lmlab.modules import DPOModule, RewardModule

pytest.importorskip("trl")
# Metrics TRL logs that lmlab logs under the same names (TRL's DPO adds entropy and logits/*, not lmlab's).
METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
           "logps/rejected")
TINY_GPT2 = {"config": {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": 32, "n_head": 2,
                        "n_positions": 64}}
ADAMW = {"_target_": "torch.optim.AdamW", "lr": 1e-3}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """The tokenizer and one batch of 6 synthetic preference pairs."""
    source = SyntheticPreferences(train_examples=24, validation_examples=8)
    datamodule = PreferenceDataModule(source, vocab_size=261, max_length=64,
                                      cache_dir=str(tmp_path_factory.mktemp("cache")))
    datamodule.setup()
    batch = datamodule.collator()([datamodule.datasets["train"][i] for i in range(6)])
    return datamodule.tokenizer, batch


def trl_args(config_class, tmp_path, **kwargs):
    return config_class(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False, **kwargs)


def placeholder_dataset() -> datasets.Dataset:
    """TRL's trainers tokenize a training set when built; the batch compared is passed to the loss directly."""
    return datasets.Dataset.from_dict({"prompt": ["upper ab"], "chosen": ["AB"], "rejected": ["ab"]})


def policy_and_reference(tokenizer, **kwargs) -> DPOModule:
    """A DPO module whose policy has moved away from its reference (seeded noise), so every ratio is non-zero."""
    torch.manual_seed(0)
    module = DPOModule(TINY_GPT2, optimizer=ADAMW, tokenizer=tokenizer, **kwargs)
    with torch.no_grad():
        for p in module.model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module


def lmlab_metrics(module, batch) -> dict[str, float]:
    values = module.metrics(module.pair_loss(batch))
    return {name: float(v.float().mean()) for name, v in values.items()}


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge", "ipo"])
def test_dpo_loss_and_metrics_equal_trl_dpo_trainer(pairs, tmp_path, loss_type):
    from trl import DPOConfig, DPOTrainer

    tokenizer, batch = pairs
    module = policy_and_reference(tokenizer, loss_type=loss_type, beta=0.2)
    ours = lmlab_metrics(module, batch)
    assert 0 < ours["rewards/accuracies"] < 1  # a batch that tells the metrics apart

    trainer = DPOTrainer(model=module.model, ref_model=module.reference.model, processing_class=tokenizer,
                         args=trl_args(DPOConfig, tmp_path, beta=0.2, loss_type=[loss_type]),
                         train_dataset=placeholder_dataset())
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "completion_mask": (batch["labels"] != IGNORE_INDEX).long()}
    loss = trainer.compute_loss(trainer.model, inputs)
    theirs = {name: values[-1] for name, values in trainer._metrics["train"].items()}
    assert ours["loss"] == pytest.approx(float(loss), abs=1e-5)
    for name in METRICS:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-5), name


def test_simpo_loss_and_metrics_equal_trl_cpo_trainer(pairs, tmp_path):
    """SimPO is TRL's CPOTrainer with loss_type=simpo and no behaviour-cloning term (cpo_alpha=0)."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    tokenizer, batch = pairs
    module = policy_and_reference(tokenizer, loss_type="simpo", beta=2.0, simpo_gamma=0.7)
    assert module.reference is None  # reference-free: no copy held
    ours = lmlab_metrics(module, batch)

    trainer = CPOTrainer(model=module.model, processing_class=tokenizer, train_dataset=placeholder_dataset(),
                         args=trl_args(CPOConfig, tmp_path, loss_type="simpo", cpo_alpha=0.0, beta=2.0,
                                       simpo_gamma=0.7))
    half = len(batch["input_ids"]) // 2
    trl_batch = {f"{side}_{key}": batch[key][rows] for side, rows in (("chosen", slice(None, half)),
                                                                      ("rejected", slice(half, None)))
                 for key in ("input_ids", "attention_mask", "labels")}
    loss, theirs = trainer.get_batch_loss_metrics(trainer.model, trl_batch)
    assert ours["loss"] == pytest.approx(float(loss), abs=1e-5)
    for name in METRICS:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-5), name


def test_reward_loss_equals_trl_reward_trainer(pairs, tmp_path):
    from trl import RewardConfig, RewardTrainer

    tokenizer, batch = pairs
    torch.manual_seed(0)
    module = RewardModule(TINY_GPT2, optimizer=ADAMW, tokenizer=tokenizer)
    ours = {name: float(v.mean()) for name, v in module.pair_metrics(batch).items()}

    trainer = RewardTrainer(model=module.model, processing_class=tokenizer, train_dataset=placeholder_dataset(),
                            args=trl_args(RewardConfig, tmp_path))
    loss = trainer.compute_loss(trainer.model, {"input_ids": batch["input_ids"],
                                                "attention_mask": batch["attention_mask"]})
    theirs = {name: values[-1] for name, values in trainer._metrics["train"].items()}
    assert ours["loss"] == pytest.approx(float(loss), abs=1e-5)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-6)
    assert ours["margin"] == pytest.approx(theirs["margin"], abs=1e-5)
