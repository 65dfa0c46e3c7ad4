"""A Hydra sweeper on current Optuna: samplers and pruners from the config, a study that a relaunch continues.

Each trial is one job of the sweep, numbered as its trial (job directory `<sweep dir>/<trial number>`), so a
relaunch never reuses a finished trial's directory and never samples a finished trial's parameters again (its
sampler's seed comes from the study's trial count); a trial that a killed launch left running is run again
in its own directory, where the run resumes from its last checkpoint. Pruning happens inside each trial
(`lmlab.sweeps.optuna_pruning.OptunaPruning`); the trial's `pruned.json` tells this sweeper to record it as pruned.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: Any = None, pruner: Any = None, study_name: str | None = None,
                 storage: str | None = None, n_trials: int = 20, n_jobs: int = 1, max_failure_rate: float = 0.0,
                 objectives: DictConfig | None = None, params: DictConfig | None = None,
                 enqueue: Sequence[DictConfig] = ()) -> None:
        self.sampler, self.pruner = sampler, pruner  # instantiated by Hydra (recursive `_target_`)
        self.study_name, self.storage = study_name, storage
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.objectives = dict(objectives or {})
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.enqueue = [OmegaConf.to_container(p) if isinstance(p, DictConfig) else dict(p) for p in enqueue]

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)
        self.monitor = str(OmegaConf.select(config, "monitor.metric", default="val/loss"))
        if not self.objectives:
            self.objectives = {self.monitor: str(OmegaConf.select(config, "monitor.mode", default="min"))}

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        from lmlab.sweeps.search import DIRECTIONS, default_storage, search_space

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = self.storage or default_storage(sweep_dir)
        study_name = self.study_name or sweep_dir.name
        bad = [d for d in self.objectives.values() if d not in DIRECTIONS]
        if bad:
            raise ValueError(f"hydra.sweeper.objectives: direction {bad[0]!r} is not one of min, max")
        distributions, fixed = search_space(self.params, arguments)
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=self.sampler, pruner=self.pruner,
                                    directions=[DIRECTIONS[d] for d in self.objectives.values()], load_if_exists=True)
        study.sampler = self._continued_sampler(study.sampler, len(study.trials))
        for params in self.enqueue:  # a relaunch adds the ones it lacks, never one a launch already ran
            study.enqueue_trial(params, skip_if_exists=True)
        log.info("Study %s in %s: %d of %d trials done, sampler %s, pruner %s", study_name, storage,
                 _count_done(study), self.n_trials, type(study.sampler).__name__, type(study.pruner).__name__)
        # The study's place, passed to every trial (its pruning callback reports there); not part of run names.
        where = [f"hydra.sweeper.storage='{storage}'", f"hydra.sweeper.study_name='{study_name}'"]
        interrupted = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
        if interrupted:
            log.info("Running again the trials a stopped launch left unfinished: %s", [t.number for t in interrupted])
        failures = ran = 0
        while True:
            batch = [(t.number, t.params) for t in interrupted[:self.n_jobs]]
            interrupted = interrupted[len(batch):]
            to_ask = min(self.n_jobs - len(batch), self.n_trials - _count_started(study))
            for _ in range(max(0, to_ask)):
                trial = study.ask(distributions)
                batch.append((trial.number, trial.params))
            if not batch:
                break
            for group in _consecutive(batch):
                overrides = [[*fixed, *_param_overrides(params), *where] for _, params in group]
                returns = self.launcher.launch(overrides, initial_job_idx=group[0][0])
                for (number, _), job in zip(group, returns, strict=True):
                    failures += not self._tell(study, number, job)
                    ran += 1
            if failures and failures / ran > self.max_failure_rate:
                log.error("%d of %d trials failed (hydra.sweeper.max_failure_rate=%s): stopping the search",
                          failures, ran, self.max_failure_rate)
                for job in returns:
                    _ = job.return_value  # raises the failure, with its traceback
        self._report(study, fixed, sweep_dir)

    def _continued_sampler(self, sampler: Any, trials: int) -> Any:
        """The sampler of a relaunch (the study holds `trials`) with its seed derived from the seed and `trials`.

        A seeded sampler created again starts its random sequence again: a relaunched study would sample the
        parameters of its first trials again. A seed derived from the study's trial count continues with new
        ones and stays reproducible (the same launches give the same trials). Unseeded samplers are random anyway.
        """
        node = OmegaConf.select(self.config, "hydra.sweeper.sampler")
        seed = node.get("seed") if isinstance(node, DictConfig) else None
        if not trials or seed is None:
            return sampler
        from hydra.utils import instantiate

        derived = int(hashlib.sha256(f"{seed}:{trials}".encode()).hexdigest()[:8], 16)
        log.info("The study holds %d trials: sampler seed %d for this launch (from seed %s)", trials, derived, seed)
        return instantiate(node, seed=derived)

    def _tell(self, study, number: int, job: JobReturn) -> bool:
        """Record a trial's result in the study; False when the job failed."""
        import optuna

        from lmlab.runs.status import trial_pruned
        from lmlab.sweeps.search import objective_values

        if job.status != JobStatus.COMPLETED:
            study.tell(number, state=optuna.trial.TrialState.FAIL)
            log.warning("Trial %d failed: %s", number, job._return_value)  # return_value would raise
            return False
        run_dir = Path(job.hydra_cfg.hydra.runtime.output_dir)
        if pruned := trial_pruned(run_dir):
            study.tell(number, state=optuna.trial.TrialState.PRUNED)
            log.info("Trial %d pruned at step %s (%s=%.4g)", number, pruned["step"], self.monitor, pruned["value"])
            return True
        try:
            values = objective_values(run_dir, self.objectives, self.monitor, job.return_value)
        except ValueError as error:
            study.tell(number, state=optuna.trial.TrialState.FAIL)
            log.warning("Trial %d: %s", number, error)
            return False
        study.tell(number, values=values)
        return True

    def _report(self, study, fixed: list[str], sweep_dir: Path) -> None:
        """Log the best trial (or the Pareto front) with the command that reruns it; save it to a YAML."""
        import optuna

        from lmlab.sweeps.search import rerun_command

        complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        if not complete:
            log.warning("No trial of study %s completed: nothing to report", study.study_name)
            return
        names = list(self.objectives)
        best = [study.best_trial] if len(names) == 1 else study.best_trials
        solutions = [{"trial": t.number, "values": dict(zip(names, t.values, strict=True)), "params": t.params,
                      "command": rerun_command(fixed, t.params)} for t in best]
        if len(names) == 1:
            [solution] = solutions
            results = {"name": "optuna", "best_trial": solution["trial"], "best_params": solution["params"],
                       "best_value": best[0].value, "command": solution["command"]}
            log.info("Best trial #%d of %d: %s=%.6g", best[0].number, len(study.trials), names[0], best[0].value)
            log.info("Best parameters: %s", best[0].params)
            log.info("Best value: %s", best[0].value)
            log.info("Rerun it: %s", solution["command"])
        else:
            results = {"name": "optuna", "solutions": solutions}
            log.info("Pareto front of %s: %d trials", ", ".join(names), len(best))
            for solution in solutions:
                log.info("  #%d %s: %s", solution["trial"], solution["values"], solution["command"])
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")


def _count_started(study) -> int:
    """Trials asked for so far (an enqueued trial still waiting does not count)."""
    import optuna

    return sum(t.state != optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False))


def _count_done(study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _param_overrides(params: dict[str, Any]) -> list[str]:
    from lmlab.sweeps.search import param_override

    return [param_override(key, value) for key, value in params.items()]


def _consecutive(batch: list[tuple[int, dict]]) -> list[list[tuple[int, dict]]]:
    """Trials in runs of consecutive numbers: one launch each, so job numbers equal trial numbers."""
    groups: list[list[tuple[int, dict]]] = []
    for number, params in sorted(batch, key=lambda item: item[0]):
        if groups and groups[-1][-1][0] == number - 1:
            groups[-1].append((number, params))
        else:
            groups.append([(number, params)])
    return groups
