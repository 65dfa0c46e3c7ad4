"""`lmlab-train` as a user runs it: run directories, the shared cache, `--help`, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, TINY, run_cli

from lmlab.config import run_name_from_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A working directory holding a finished run `outputs/clm/first`, as a user's project would."""
    root = tmp_path_factory.mktemp("project")
    result = run_cli([*TINY, "run_name=first", f"paths.root_dir={root}"], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_run_directory_is_named_from_experiment_and_run_name_and_records_provenance(project):
    run_dir = project / "outputs" / "clm" / "first"
    expected = ("config.yaml", "overrides.yaml", "run.json", "metrics.csv", "checkpoints/last.ckpt",
                "hf/model.safetensors")
    for name in expected:
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert "run_name=first" in info["command"]
    assert set(info["git"]) == {"commit", "dirty"}
    assert "block_size: 64" in (run_dir / "config.yaml").read_text()  # resolved, with the overrides applied


def test_second_run_reuses_the_tokenized_cache(project):
    result = run_cli([*TINY, "run_name=second", f"paths.root_dir={project}"], cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (project / "outputs" / "clm" / "second" / "train.log").read_text()
    assert "Reusing cached tokenized train split" in log
    assert "Reusing cached tokenizer" in log
    assert "cache miss" not in log
    console = result.stdout + result.stderr  # Lightning's own handler and Hydra's would print each line twice
    assert console.count("Seed set to") == 1, console[-3000:]


def test_default_run_name_comes_from_the_overrides(tmp_path):
    """A re-launch of the same command must find the same directory; the budget is not part of the name, so a
    longer one (`resume=force`) continues the same run. (A refused launch leaves no directory: this one trains.)"""
    overrides = ["debug=fast", "trainer.max_steps=2", f"paths.root_dir={tmp_path}"]
    assert run_cli(overrides, cwd=tmp_path).returncode == 0
    runs = [p.name for p in (tmp_path / "outputs" / "clm").iterdir()]
    assert runs == [run_name_from_overrides("debug=fast")]
    assert runs[0] == "debug-fast" and "max_steps" not in runs[0]


def test_help_lists_the_config_groups(tmp_path):
    result = run_cli(["--help"], cwd=tmp_path)
    assert result.returncode == 0
    for group in ("task:", "model:", "data:", "trainer:", "logger:", "experiment:", "debug:"):
        assert group in result.stdout
    header = result.stdout.split("==")[0]  # the description above Hydra's list of groups
    for task in sorted((ROOT / "conf" / "task").glob("*.yaml")):
        assert f"task={task.stem}" in header, task.stem


BAD_INPUTS = [
    (["data=files", "data.source.train=/no/such/corpus/*.txt"], "data.source.train='/no/such/corpus/*.txt'"),
    (["model=gpt2", "model.pretrained=no-such-org/no-such-model"], "model.pretrained='no-such-org/no-such-model'"),
    (["data.block_size=4096"], "data.block_size=4096"),
    (["trainer.max_step=10"], "'trainer.max_step'"),  # a misspelt key: Hydra cannot compose it
    (["model=gpt5"], "'model/gpt5'"),                  # a config group option that does not exist
]


@pytest.mark.parametrize(("overrides", "named"), BAD_INPUTS,
                         ids=["data-path", "model-name", "block-size", "unknown-key", "unknown-option"])
def test_bad_input_is_one_line_error_and_leaves_earlier_run_intact(project, overrides, named):
    run_dir = project / "outputs" / "clm" / "first"
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    result = run_cli([*TINY, "run_name=first", f"paths.root_dir={project}", *overrides], cwd=project)

    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and named in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != "train.log"}
    assert after == {p: b for p, b in before.items() if p.name != "train.log"}


@pytest.mark.parametrize(("override", "expected"), [
    ("optimizer.lrr=1e-3", "Could not override 'optimizer.lrr'. To append to your config use +optimizer.lrr=1e-3"),
    ("model=gpt5", "Available options in 'model': bert-tiny gpt2"),
    ("model=gpt2-tiny,bert-tiny", "To sweep over it, add --multirun"),
    ("wandb.api_key=sk-abcdefghij123456", "Could not override 'wandb.api_key'"),
])
def test_an_override_hydra_cannot_compose_is_one_line_with_status_2(tmp_path, override, expected):
    result = run_cli([override], cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr  # one line
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert "abcdefghij123456" not in result.stderr  # a secret value is masked
    assert not (tmp_path / "outputs").exists()  # nothing ran


@pytest.mark.parametrize(("overrides", "expected"), [
    (["optimizer.lrr=1e-3"], "Could not override 'optimizer.lrr'"),
    (["optimizer.lr=1e-3,3e-4", "model=gpt2-tiny,gpt5"], "Could not find 'model/gpt5'"),  # the second value only
    (["optimizer.lr=tag(log,interval(1e-4,1e-3))", "optimizer.lrr=2"], "Could not override 'optimizer.lrr'"),
    (["optimizer.lr=1e-3,,2"], "Error parsing override 'optimizer.lr=1e-3,,2'"),
])
def test_a_multirun_hydra_cannot_compose_is_one_line_with_status_2(tmp_path, overrides, expected):
    result = run_cli(["-m", *overrides], cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr  # one line
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert not (tmp_path / "outputs").exists()  # no job ran
