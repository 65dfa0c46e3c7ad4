"""`task.module.precompute_reference=true`: DPO's reference log-probabilities computed once, cached with the data.

Before training (the module's `setup`, before Lightning restores a checkpoint) the policy is still the starting
model, so it is the reference: it scores every pair of every split once, in eval mode, without gradients, under
the trainer's precision, and the sums are cached next to the tokenized pairs (`lmlab.data.cache`), keyed by the
pairs' own key and a hash of the starting weights (`lmlab.models.reference.weights_fingerprint`). Each split then
carries them as columns (`PreferenceDataModule.add_reference_logps`), its batches bring them to the loss, and no
reference model is built or held. Under DDP the first process to take the cache's lock computes every pair and
the others read its file; a resumed run rebuilds the same starting model, hence the same key, and reads it too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from lmlab.data.cache import cached_dir, fingerprint
from lmlab.models.reference import reference_logits, weights_fingerprint
from lmlab.modules.preference_losses import sequence_logps

log = logging.getLogger(__name__)


def attach_reference_logps(module, datamodule) -> None:
    """Give each split of `datamodule` (a `PreferenceDataModule`) the reference log-probabilities of its pairs,
    computed by `module.model` as it is now (the starting policy) or read from the cache."""
    trainer = module.trainer
    reference = weights_fingerprint(module.model)
    for split in datamodule.splits:
        key = fingerprint(pairs=datamodule.split_key(split), reference=reference, precision=str(trainer.precision))

        def build(tmp: Path, split: str = split) -> None:
            chosen, rejected = score_pairs(module.model, datamodule, split, trainer)
            torch.save({"chosen": chosen, "rejected": rejected}, tmp / "logps.pt")

        entry = cached_dir(datamodule.cache_dir / "reference_logps", key, build,
                           f"reference log-probabilities of the {split} pairs")
        logps = torch.load(entry / "logps.pt", weights_only=True)
        datamodule.add_reference_logps(split, logps["chosen"].tolist(), logps["rejected"].tolist())


def score_pairs(model: torch.nn.Module, datamodule, split: str, trainer) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) summed log-probabilities of every pair of `split`, in row order, by `model` in eval mode
    (under peft: with its adapters disabled) on the trainer's device and precision."""
    datamodule.setup()
    loader = torch.utils.data.DataLoader(datamodule.datasets[split], batch_size=datamodule.eval_batch_size,
                                         collate_fn=datamodule.collator())
    plugin, device = trainer.precision_plugin, trainer.strategy.root_device
    home, was_training = next(model.parameters()).device, model.training
    plugin.convert_module(model)  # a "-true" precision: the dtype the live reference would have (idempotent later)
    model.to(device).eval()
    chosen, rejected = [], []
    try:
        for batch in loader:
            inputs = {key: batch[key].to(device) for key in ("input_ids", "attention_mask")}
            with plugin.forward_context():
                logps = sequence_logps(reference_logits(model, None, **inputs), batch["labels"].to(device))
            chosen.append(logps.chosen.cpu())
            rejected.append(logps.rejected.cpu())
    finally:
        model.to(home).train(was_training)
    log.info("Reference log-probabilities of %d %s pairs computed", len(datamodule.datasets[split]), split)
    return torch.cat(chosen), torch.cat(rejected)
