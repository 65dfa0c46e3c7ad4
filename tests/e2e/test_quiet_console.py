"""A `debug=fast` run's console with the default settings, as a batch job sees it: lmlab's own lines, at most 40,
each once, and none from a third party's warnings (the config tree is in config.yaml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli

# Smaller than debug=fast's model and corpus; every console setting left at its default.
SMALL = ["debug=fast", "data.max_documents=60", "data.vocab_size=512", "data.block_size=64",
         "model.config.n_layer=2", "model.config.n_embd=64", "model.config.n_head=2"]
THIRD_PARTY = re.compile(r"\]\[(?!lmlab)[\w.]+\]\[(WARNING|ERROR)\]|\w+Warning\b|warnings\.warn|fatal: |torchao"
                         r"|[Tt]riton|weights_only|exists and is not empty|TPU available|HYDRA_FULL_ERROR")


def assert_quiet(console: str) -> None:
    lines = console.splitlines()
    assert len(lines) <= 40, f"{len(lines)} lines:\n{console}"
    assert [line for line in lines if THIRD_PARTY.search(line)] == [], console
    reused = [line.split(" - ", 1)[1] for line in lines if "Reusing cached" in line]
    assert len(reused) == len(set(reused)), reused


@pytest.mark.slow  # two launches: about 45 s on 2 shared cores
def test_a_debug_fast_run_and_its_resume_print_at_most_40_lines_and_no_third_party_warning(tmp_path, cache_dir):
    args = [*SMALL, f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}", "run_name=quiet"]
    first = run_cli([*args, "trainer.max_steps=10"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert_quiet(first.stdout + first.stderr)
    run_dir = Path(tmp_path / "outputs" / "clm" / "quiet")
    assert "model:" in (run_dir / "config.yaml").read_text() and "model:" not in first.stdout  # no config tree

    resumed = run_cli([*args, "trainer.max_steps=15", "resume=force"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_quiet(resumed.stdout + resumed.stderr)
    assert "Continuing this run from step 10" in resumed.stdout


def test_print_config_takes_true_false_or_sweep(tmp_path):
    result = run_cli(["print_config=maybe", f"paths.root_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2 and "print_config='maybe' must be true, false or sweep" in result.stderr


@pytest.mark.parametrize(("environ", "prefix"), [
    ({"WORLD_SIZE": "2", "LOCAL_RANK": "1"}, "[rank 1] "),   # Lightning's launcher: the child
    ({"WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "[rank 0] "),   # ... and the process that started it
    ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}, "[rank 3] "),  # torchrun: the global rank
    ({}, ""),                                                  # a single process: no prefix
])
def test_every_rank_prefixes_its_lines_once_on_every_handler(monkeypatch, environ, prefix):
    import io
    import logging

    from lmlab.console import RankPrefix

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    streams = [io.StringIO(), io.StringIO()]  # the console and train.log
    logger = logging.getLogger("lmlab.test_rank_prefix")
    logger.propagate = False
    handlers = [logging.StreamHandler(stream) for stream in streams]
    for handler in handlers:
        handler.addFilter(RankPrefix())
        logger.addHandler(handler)
    try:
        logger.warning("step %d/20", 5)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    assert [stream.getvalue() for stream in streams] == [f"{prefix}step 5/20\n"] * 2
