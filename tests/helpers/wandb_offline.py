"""Read back what W&B wrote offline (the framing is read by `lmlab.tracking.wandb_records`): one run's
identity, config, history and summary from one `.wandb` file."""

from __future__ import annotations

from pathlib import Path

from lmlab.tracking.wandb_records import items, read_records


def offline_run(path: Path) -> dict:
    """The run (id, name, group, job_type, tags), its config and its history rows, from one `.wandb` file."""
    run: dict = {"config": {}, "history": [], "summary": {}}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type, tags=list(r.tags))
            run["config"].update(items(r.config.update))
        elif kind == "config":
            run["config"].update(items(record.config.update))
        elif kind == "history":
            run["history"].append(items(record.history.item))
        elif kind == "summary":
            run["summary"].update(items(record.summary.update))
    return run
