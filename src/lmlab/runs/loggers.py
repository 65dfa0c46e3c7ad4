"""Lightning loggers adapted to lmlab's configs."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger
from omegaconf import OmegaConf

from lmlab.runs.redact import redact


class RedactedWandbLogger(WandbLogger):
    """Logs the module's hyperparameters as plain values with secrets redacted, like the run config.

    Lightning would log config nodes by their string form, over the resolved config already logged.
    """

    def log_hyperparams(self, params: Any) -> None:
        plain = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                 for k, v in dict(params).items()}
        super().log_hyperparams(redact(plain))
