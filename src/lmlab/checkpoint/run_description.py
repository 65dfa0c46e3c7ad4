"""`RunDescription`: every checkpoint carries its run's config and tokenizer (`lmlab.checkpoint.description`),
so a checkpoint copied anywhere (or `lmlab-consolidate`'s output) loads in `lmlab-generate`, `lmlab-eval` and
`model.init_from`. Always on: `lmlab-train` adds it beside the configured callbacks."""

from __future__ import annotations

from typing import Any

import lightning as L

from lmlab.checkpoint.description import DESCRIPTION_KEY, tokenizer_files


class RunDescription(L.Callback):
    def __init__(self, config: dict[str, Any]):
        self.config = config  # resolved, secrets masked: what config.yaml holds
        self._tokenizer: dict[str, bytes] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._tokenizer is None:  # once per launch: the tokenizer does not change while training
            tokenizer = pl_module.tokenizer  # lmlab.contracts.TaskModule: the data module's, while training
            self._tokenizer = tokenizer_files(tokenizer) if tokenizer is not None else {}
        checkpoint[DESCRIPTION_KEY] = {"config": self.config, "tokenizer": self._tokenizer}
