"""hydra-submitit-launcher's SLURM launcher, with each job's resources taken from that job's own config.

The plugin resolves `hydra.launcher` once, for the whole sweep, so `-m trainer.devices=1,2` would submit
every job with the same `tasks_per_node`. Here each job's launcher node is resolved from the job's composed
config (`tasks_per_node: ${trainer.devices}`, `nodes: ${trainer.num_nodes}` in conf/hydra/launcher/slurm.yaml
then follow the job); jobs that ask for the same resources are submitted together as one job array.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

EXECUTOR_KEYS = {"submitit_folder", "max_num_timeout"}  # what builds the executor, not an sbatch option


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    def job_params(self, overrides: Sequence[str]) -> dict[str, Any]:
        """The launcher keys resolved in this job's config (what `hydra.launcher` says for this job)."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        params = OmegaConf.to_container(config.hydra.launcher, resolve=True)
        params.pop("_target_", None)
        return params

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        from lmlab.sweeps.slurm import skip_sacct_without_accounting

        skip_sacct_without_accounting()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
        groups: dict[str, list[int]] = {}
        for i, overrides in enumerate(job_overrides):
            groups.setdefault(json.dumps(self.job_params(overrides), sort_keys=True), []).append(i)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        jobs = {}
        for key, indices in groups.items():
            params = json.loads(key)
            executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                             slurm_max_num_timeout=params["max_num_timeout"])
            executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()
                                          if k not in EXECUTOR_KEYS})
            numbers = [initial_job_idx + i for i in indices]
            for i, idx in zip(indices, numbers, strict=True):
                log.info("\t#%d (%s node(s) x %s task(s)): %s", idx, params["nodes"], params["tasks_per_node"],
                         " ".join(filter_overrides(job_overrides[i])))
            submitted = executor.map_array(self, [list(job_overrides[i]) for i in indices],
                                           ["hydra.sweep.dir"] * len(indices), numbers,
                                           [f"job_id_for_{idx}" for idx in numbers],
                                           [Singleton.get_state()] * len(indices))
            jobs.update(zip(indices, submitted, strict=True))
        return [jobs[i].results()[0] for i in range(len(job_overrides))]
