"""No lmlab module runs code at import beyond definitions: importing all of them changes no global state."""

from __future__ import annotations

import json
import subprocess
import sys

# Runs in a fresh interpreter: the libraries lmlab builds on are imported first (their own import-time
# registrations are theirs), then the state is read, then every lmlab module is imported and it is read again.
PROBE = """
import importlib, json, logging, os, pkgutil, sys
import hydra_plugins.lmlab, lightning, lmlab, omegaconf, torch, transformers
from omegaconf.basecontainer import BaseContainer

def state():
    return {"resolvers": sorted(BaseContainer._resolvers), "environ": dict(os.environ),
            "root_handlers": [repr(h) for h in logging.getLogger().handlers], "root_level": logging.getLogger().level}

before = state()
names = [info.name for package in (lmlab, hydra_plugins.lmlab)
         for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"before": before, "after": state(), "imported": names}))
"""


def test_importing_every_module_leaves_resolvers_environment_and_logging_unchanged():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"lmlab.train", "lmlab.config", "hydra_plugins.lmlab.gpu_launcher"} <= set(probe["imported"])
    before, after = probe["before"], probe["after"]
    assert after["resolvers"] == before["resolvers"]
    changed = {k for k in before["environ"].keys() | after["environ"].keys()
               if before["environ"].get(k) != after["environ"].get(k)}
    assert not changed
    assert (after["root_handlers"], after["root_level"]) == (before["root_handlers"], before["root_level"])


def test_a_sweep_job_in_another_process_gets_the_resolvers_with_hydras_state(tmp_path):
    """What submitit, joblib and local_gpus do: the launching process pickles `Singleton.get_state()`, the job
    (which never registers them itself) restores it, then resolves the job's directory."""
    import cloudpickle
    from hydra.core.singleton import Singleton

    from lmlab.config import register_resolvers

    register_resolvers()
    job = ("import sys, cloudpickle; from hydra.core.singleton import Singleton; from omegaconf import OmegaConf; "
           "assert not OmegaConf.has_resolver('lmlab.cwd'); "
           "Singleton.set_state(cloudpickle.loads(sys.stdin.buffer.read())); "
           "print(OmegaConf.create({'dir': '${lmlab.cwd:}/outputs'}).dir)")
    result = subprocess.run([sys.executable, "-c", job], input=cloudpickle.dumps(Singleton.get_state()),
                            capture_output=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == f"{tmp_path}/outputs"
