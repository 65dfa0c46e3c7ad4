"""`bench/gpu_job.sh` checked on CPU: its stages in priority order within the budget (a dry run prints each
stage's commands), and the scripts that turn a job's logs into figures: lmlab beside nanoGPT, two runs'
tokens/s and loss curves."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))


def gpu_job(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "bench/gpu_job.sh", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OUT": env.pop("OUT", ""), **env})


def test_a_dry_run_plans_every_stage_in_order_within_the_budget(tmp_path):
    stages = [line.split("\t") for line in gpu_job("--list").stdout.splitlines()]
    names = [name for name, _ in stages]
    assert names[:4] == ["gpt2", "nanogpt", "llama", "fp8"]  # the acceptance figures first
    result = gpu_job("all", DRY_RUN="1", BUDGET="530", OUT=str(tmp_path))
    assert result.returncode == 0, result.stderr
    planned = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("== ")]
    assert planned == names[:len(planned)] and len(planned) >= 5
    granted = [int(line.split("at most ")[1].split("s")[0]) for line in result.stdout.splitlines()
               if line.startswith("== ")]
    assert sum(granted) <= 530 - 15  # worst case: every stage uses its whole cap
    assert "model.fp8=true" in result.stdout and "--real_data=False --compile=True --batch_size=16" in result.stdout
    assert "skipped (budget spent)" in result.stdout  # the rest waits for a second call
    some = gpu_job("candidates", "profile", DRY_RUN="1", OUT=str(tmp_path))
    assert [line.split()[1] for line in some.stdout.splitlines() if line.startswith("== ")] == ["candidates", "profile"]
    assert "--set model.compile=regional" in some.stdout


def test_an_unknown_stage_is_one_line_and_status_2():
    result = gpu_job("fp9", DRY_RUN="1")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown stage 'fp9' (bash bench/gpu_job.sh --list)"


def test_results_put_lmlab_beside_nanogpt_from_the_same_job(tmp_path):
    from gpu_results import collect

    (tmp_path / "gpt2.json").write_text(json.dumps({"spec": {"set": []}, "results": {"lmlab": [
        {"tokens_per_sec": 500_000.0}, {"tokens_per_sec": 520_000.0}, {"tokens_per_sec": 510_000.0}]}}))
    (tmp_path / "nanogpt.log").write_text("Compiling model...\n19/20 loss: 10.9\n"
                                          "time per iteration: 34.2947ms, MFU: 37.65%\n")
    (tmp_path / "startup-regional-warm.json").write_text(json.dumps({"time_to_first_step_s": 7.5, "best": 1.0}))
    results, gpt2 = collect(tmp_path)
    nanogpt = 16 * 1024 / 0.0342947
    assert gpt2["nanogpt"]["tokens_per_sec"] == pytest.approx(nanogpt)
    assert gpt2["lmlab_vs_nanogpt"] == pytest.approx(510_000 / nanogpt)
    assert results["startup"] == {"regional-warm": {"time_to_first_step_s": 7.5}}
    assert results["llama_124m_tokens_per_sec"] is None and results["fp8"] is None


def write_metrics(run_dir: Path, losses: list[float], tokens_per_sec: float) -> None:
    run_dir.mkdir()
    with (run_dir / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["step", "train/loss", "train/tokens_per_sec"])
        writer.writeheader()
        for i, loss in enumerate(losses):
            writer.writerow({"step": 10 * (i + 1), "train/loss": loss, "train/tokens_per_sec": tokens_per_sec})


def test_two_runs_are_compared_by_speed_and_by_their_late_losses(tmp_path):
    from compare_runs import compare

    write_metrics(tmp_path / "bf16", [10.0, 8.0, 6.0, 5.0, 4.0, 4.0], 100_000)
    write_metrics(tmp_path / "fp8", [10.5, 8.5, 6.0, 5.0, 4.02, 4.04], 125_000)
    result = compare(tmp_path / "bf16", tmp_path / "fp8", ("bf16", "fp8"), tolerance=0.01)
    assert result["speedup"] == pytest.approx(1.25)
    assert result["late_loss_relative_difference"] == pytest.approx((4.02 + 4.04 + 5.0) / (4 + 4 + 5.0) - 1)
    assert result["within_tolerance"] and result["max_abs_loss_difference"] == pytest.approx(0.5)
    assert not compare(tmp_path / "bf16", tmp_path / "fp8", ("bf16", "fp8"), tolerance=0.001)["within_tolerance"]
