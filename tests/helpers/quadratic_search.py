"""A Hydra app whose "training" is a quadratic: lets tests run lmlab's Optuna sweeper in seconds.

Returns (x - 2)^2 + (y - 1)^2, and writes it with a second figure (`speed`, highest at x = 0) to summary.json, as
a training run writes its summary.
"""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(config_path=None, config_name=None, version_base="1.3")
def main(cfg: DictConfig) -> float:
    loss = (cfg.x - 2) ** 2 + (cfg.y - 1) ** 2
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    (run_dir / "summary.json").write_text(json.dumps({"loss": loss, "speed": -abs(cfg.x)}))
    return loss


if __name__ == "__main__":
    main()
