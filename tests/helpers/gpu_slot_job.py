"""A Hydra app standing in for a training job: records the GPUs it was given and when it held them.

`+trainer.devices=N` says how many GPUs it asks for; `+die=true` SIGKILLs itself halfway.
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(config_path=None, config_name=None, version_base="1.3")
def main(cfg: DictConfig) -> None:
    started = time.time()
    time.sleep(cfg.seconds / 2)
    if cfg.get("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(cfg.seconds / 2)
    record = {"gpus": os.environ["CUDA_VISIBLE_DEVICES"].split(","), "start": started, "end": time.time()}
    (Path(HydraConfig.get().runtime.output_dir) / "gpus.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
