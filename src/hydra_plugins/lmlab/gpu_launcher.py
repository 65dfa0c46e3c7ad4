"""A Hydra launcher that runs a sweep's jobs side by side on one machine, each on GPUs of its own.

Each job takes `trainer.devices` GPUs from those visible to the sweep, runs in its own process with
`CUDA_VISIBLE_DEVICES` set to them, and gives them back when it ends, however it ends (a failure, a
SIGKILL). Jobs wait for free GPUs; jobs of different sizes share the pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


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
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        gpus = visible_gpus(self.gpus)
        needs = [devices_of(self.hydra_context.config_loader.load_sweep_config(self.config, list(o)), len(gpus))
                 for o in job_overrides]
        for idx, need in enumerate(needs):
            if need > len(gpus):
                raise ValueError(f"job #{initial_job_idx + idx} asks for trainer.devices={need} GPUs but the sweep "
                                 f"sees {len(gpus)} ({','.join(gpus) or 'none'}; set CUDA_VISIBLE_DEVICES or "
                                 "hydra.launcher.gpus)")
        slots = GPUSlots(gpus)
        n_jobs = self.n_jobs or max(1, len(gpus))
        log.info("Launching %d jobs on GPUs %s, at most %d at a time", len(job_overrides), ",".join(gpus), n_jobs)
        state = cloudpickle.dumps((self.hydra_context, self.config, self.task_function, Singleton.get_state()))

        def run(idx: int, overrides: Sequence[str], need: int) -> JobReturn:
            with slots.hold(need) as held:
                log.info("\t#%d on GPU %s: %s", idx, ",".join(held), " ".join(filter_overrides(overrides)))
                return _run_in_process(idx, overrides, held, state)

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            futures = [pool.submit(run, initial_job_idx + i, o, n) for i, (o, n) in enumerate(zip(job_overrides, needs,
                                                                                                 strict=True))]
            return [future.result() for future in futures]


def _run_in_process(idx: int, overrides: Sequence[str], gpus: list[str], state: bytes) -> JobReturn:
    """Run one job in a fresh process that sees only `gpus`; a process that dies is a failed job."""
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
    if result is None:
        code = process.exitcode
        how = f"signal {-code}" if code and code < 0 else f"status {code}"
        log.error("Job #%d ended by %s, GPUs %s freed", idx, how, ",".join(gpus))
        result = JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                           _return_value=RuntimeError(f"job #{idx} ended by {how} without a result"))
    return result


def _job_process(idx: int, overrides: list[str], gpus: list[str], state: bytes, send) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # before anything initializes CUDA
    import cloudpickle
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job

    hydra_context, config, task_function, singleton_state = cloudpickle.loads(state)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    result = run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                     job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    send.send_bytes(cloudpickle.dumps(result))
    send.close()
