"""What a run directory records about how it was made: config, command line, code version."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.utils.redact import mask, redact, redact_overrides

__all__ = ["git_state", "launch_info", "redact", "resolved_config", "write_provenance"]


def git_state(cwd: str | Path) -> dict[str, object]:
    """Commit and dirty flag of the checkout holding `cwd` (None when it is not a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def resolved_config(cfg: DictConfig) -> dict:
    return redact(OmegaConf.to_container(cfg, resolve=True))


def write_provenance(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> None:
    """Write `config.yaml` (resolved, secrets redacted), `overrides.yaml` and `run.json` into `run_dir`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = resolved_config(cfg)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    (run_dir / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(redact_overrides(overrides))))
    (run_dir / "run.json").write_text(json.dumps(launch_info(overrides), indent=2) + "\n")


def launch_info(overrides: list[str]) -> dict[str, object]:
    """How this process was launched: command line, overrides, code version, host, time (secrets masked)."""
    argv = [mask(sys.argv[0]), *redact_overrides(sys.argv[1:])]
    return {
        "command": " ".join([Path(argv[0]).name, *argv[1:]]),
        "argv": argv,
        "overrides": redact_overrides(overrides),
        "cwd": mask(os.getcwd()),
        "git": git_state(Path(__file__).parent),
        "host": socket.gethostname(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # a sweep's job: the GPUs it was given
        "python": sys.version.split()[0],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
