"""Run many `lmlab-train` launches as a user would, without paying the interpreter's start for each one.

    python launch_matrix.py JOBS.json

JOBS.json: `{"cwd": ..., "parallel": 2, "jobs": [{"name": ..., "launches": [[arg, ...], ...]}, ...]}`. The
heavy imports (Lightning, transformers, W&B, MLflow) happen once here; each launch is then a forked process
that runs `lmlab.train.main()` on its arguments, exactly as the `lmlab-train` entry point does, with its
console in `<cwd>/<name>.<i>.log`. A job's launches run one after the other (a SIGKILLed launch, then its
relaunch); jobs run `parallel` at a time. Prints one JSON line: each launch's exit status (-9: SIGKILL).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def launch(args: list[str], cwd: Path, log: Path) -> int:
    """Fork, run `lmlab-train args` in the child with its output in `log`; returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.chdir(cwd)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = ["lmlab-train", *args]
        from lmlab.train import main

        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported in the launch's log
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def status(wait_status: int) -> int:
    return -os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    cwd, parallel = Path(spec["cwd"]), spec.get("parallel", 1)
    import lightning  # noqa: F401 - imported once, before the forks
    import lm_eval  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import tensorboardX  # noqa: F401
    import transformers  # noqa: F401
    import wandb  # noqa: F401

    import lmlab.train  # noqa: F401

    pending = [(job["name"], list(enumerate(job["launches"]))) for job in spec["jobs"]]
    running: dict[int, tuple[str, int, list]] = {}
    results: dict[str, list[int]] = {job["name"]: [] for job in spec["jobs"]}

    def start(name: str, queue: list) -> None:
        i, args = queue.pop(0)
        running[launch(args, cwd, cwd / f"{name}.{i}.log")] = (name, i, queue)

    while pending or running:
        while pending and len(running) < parallel:
            start(*pending.pop(0))
        pid, wait_status = os.wait()
        name, _, queue = running.pop(pid)
        results[name].append(status(wait_status))
        if queue:
            start(name, queue)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
