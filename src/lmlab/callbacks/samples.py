"""Sampled continuations of a prompt at each validation end: the quickest sanity check of an LM."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from lmlab.models.vocab_padding import pad_token_ids
from lmlab.parallel.sharding import is_sharded
from lmlab.tracking.loggers import SAMPLES_KEY, StepsDoneWandbLogger, samples_table

log = logging.getLogger(__name__)


class SampleContinuations(L.Callback):
    """Generates `num_samples` continuations of `prompt`, logs them and appends them to `samples.txt`.

    Pad rows of the model's vocabulary (`lmlab.models.vocab_padding`) are suppressed: no id beyond the
    tokenizer is ever sampled. Sampling runs under a forked, fixed-seed RNG, so it never changes the
    training run's random stream (a resumed run stays bitwise equal to an uninterrupted one).
    """

    def __init__(self, prompt: str = "def ", num_samples: int = 2, max_new_tokens: int = 48,
                 temperature: float = 0.8, top_k: int = 50, output_file: str | None = None, seed: int = 0):
        self.prompt = prompt
        self.num_samples = num_samples
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_k = top_k
        self.output_file = Path(output_file) if output_file else None
        self.seed = seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tokenizer = pl_module.tokenizer
        if trainer.sanity_checking or tokenizer is None or self.num_samples <= 0:
            return
        sharded = is_sharded(pl_module.model)  # FSDP: every rank runs the forward (it gathers each block)
        if not (trainer.is_global_zero or sharded):
            return
        pad_rows = pad_token_ids(pl_module.model, len(tokenizer))
        prompt = tokenizer(self.prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(pl_module.device)
        with torch.random.fork_rng(devices=[pl_module.device] if pl_module.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            output = pl_module.model.generate(
                prompt.repeat(self.num_samples, 1), do_sample=True, max_new_tokens=self.max_new_tokens,
                temperature=self.temperature, top_k=self.top_k, use_cache=True,
                pad_token_id=tokenizer.pad_token_id, suppress_tokens=pad_rows or None, synced_gpus=sharded,
            )
        if not trainer.is_global_zero:
            return
        texts = tokenizer.batch_decode(output, skip_special_tokens=True)
        for text in texts:
            log.info("sample @ step %d: %r", trainer.global_step, text)
        if self.output_file:
            with self.output_file.open("a") as f:
                f.writelines(f"step {trainer.global_step}: {text!r}\n" for text in texts)
        for logger in trainer.loggers:
            if isinstance(logger, StepsDoneWandbLogger):  # at this validation's step, in that step's row
                logger.log_points(trainer.global_step, {SAMPLES_KEY: samples_table(trainer.global_step, texts)})
            elif hasattr(logger, "log_text"):
                logger.log_text(SAMPLES_KEY, columns=["step", "text"], data=[[trainer.global_step, t] for t in texts])
