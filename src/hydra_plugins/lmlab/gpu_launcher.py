"""A Hydra launcher that runs a sweep's jobs side by side on one machine, each on GPUs of its own.

Each job takes `trainer.devices` GPUs from those visible to the sweep, runs in its own process with
`CUDA_VISIBLE_DEVICES` set to them, and gives them back when it ends, however it ends (a failure, a
SIGKILL). Jobs wait for free GPUs; jobs of different sizes share the pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)
_hydra_config_lock = threading.Lock()  # HydraConfig is one per process; the launcher's threads share it


class GPUSlots:
    """The sweep's GPUs; `hold(n)` waits until n of them are free and gives them back on exit."""

    def __init__(self, gpus: Sequence[str]):
        self.free = list(gpus)
        self.size = len(self.free)
        self.changed = threading.Condition()

    @contextmanager
    def hold(self, n: int) -> Iterator[list[str]]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.free) >= n)
            held, self.free = self.free[:n], self.free[n:]
        try:
            yield held
        finally:
            with self.changed:
                self.free = sorted([*self.free, *held], key=lambda gpu: (len(gpu), gpu))
                self.changed.notify_all()


def visible_gpus(gpus: str | None) -> list[str]:
    """`gpus` ("0,1,2,3"), else `$CUDA_VISIBLE_DEVICES`, else every GPU torch sees."""
    listed = gpus if gpus is not None else os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in str(listed).split(",") if gpu.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def devices_of(config: DictConfig, gpus: int) -> int:
    """GPUs a job asks for: `trainer.devices` (a count, a list of ids, or -1/"auto": all of them)."""
    devices = OmegaConf.select(config, "trainer.devices", default=1)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if devices in (-1, "auto", None):
        return gpus
    return len(devices) if OmegaConf.is_list(devices) or isinstance(devices, list) else int(devices)


class LocalGPUsLauncher(Launcher):
    def __init__(self, gpus: str | None = None, n_jobs: int | None = None) -> None:
        self.gpus, self.n_jobs = gpus, n_jobs

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import cloudpickle

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        gpus = visible_gpus(self.gpus)
        configs = [self.hydra_context.config_loader.load_sweep_config(self.config, list(o)) for o in job_overrides]
        needs = [devices_of(config, len(gpus)) for config in configs]
        for idx, need in enumerate(needs):
            if need > len(gpus):
                print(f"error: job #{initial_job_idx + idx} asks for trainer.devices={need} GPUs but the sweep sees "
                      f"{len(gpus)} ({','.join(gpus) or 'none'}); set CUDA_VISIBLE_DEVICES or hydra.launcher.gpus",
                      file=sys.stderr)
                sys.exit(2)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        slots = GPUSlots(gpus)
        n_jobs = self.n_jobs or max(1, len(gpus))
        log.info("Launching %d jobs on GPUs %s, at most %d at a time", len(job_overrides), ",".join(gpus), n_jobs)
        state = cloudpickle.dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()))

        def run(idx: int, overrides: Sequence[str], config: DictConfig, need: int) -> JobReturn:
            with slots.hold(need) as held:
                log.info("\t#%d on GPU %s: %s", idx, ",".join(held), " ".join(filter_overrides(overrides)))
                result, code = _run_in_process(idx, overrides, held, state)
            if result is None:  # the process died: Hydra's on_job_end never ran for this job
                how = f"signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit status {code}"
                log.error("Job #%d ended by %s, GPUs %s freed", idx, how, ",".join(held))
                result = JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                                   _return_value=RuntimeError(f"job #{idx} ended by {how}, without a result"))
                self.report_lost_job(idx, config, result)
            return result

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            futures = [pool.submit(run, initial_job_idx + i, *job) for i, job in enumerate(zip(job_overrides, configs,
                                                                                            needs, strict=True))]
            return [future.result() for future in futures]

    def report_lost_job(self, idx: int, config: DictConfig, result: JobReturn) -> None:
        """Run the Hydra callbacks' `on_job_end` for a job whose process died (lmlab's SweepReport then
        writes its `error.txt`), with the job's directory resolved as `run_job` would have."""
        with _hydra_config_lock:
            _number_job(config, idx)
            HydraConfig.instance().set_config(config)  # `hydra.sweep.subdir` reads `${hydra:job.num}`
            with read_write(config.hydra.runtime):
                config.hydra.runtime.output_dir = str(Path(config.hydra.sweep.dir,
                                                           config.hydra.sweep.subdir).absolute())
            self.hydra_context.callbacks.on_job_end(config=config, job_return=result)


def _run_in_process(idx: int, overrides: Sequence[str], gpus: list[str], state: bytes) -> tuple[JobReturn | None, int]:
    """Run one job in a fresh process that sees only `gpus`: (its result or None if it died; its exit code)."""
    import cloudpickle

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_job_process, args=(idx, list(overrides), gpus, state, send), daemon=False)
    process.start()
    send.close()
    try:
        result = cloudpickle.loads(receive.recv_bytes())
    except EOFError:  # the process died without a result
        result = None
    process.join()
    return result, process.exitcode


def _job_process(idx: int, overrides: list[str], gpus: list[str], state: bytes, send) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # before anything initializes CUDA
    import cloudpickle
    from hydra.core.utils import run_job

    hydra_context, config, task_function, singleton_state = cloudpickle.loads(state)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    _number_job(sweep_config, idx)
    HydraConfig.instance().set_config(sweep_config)
    result = run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                     job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    send.send_bytes(cloudpickle.dumps(result))
    send.close()


def _number_job(config: DictConfig, idx: int) -> None:
    with open_dict(config):
        config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
        config.hydra.job.num = idx
