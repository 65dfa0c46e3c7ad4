"""Acceptance 2 of issue 22: sharded (DCP) checkpoints of `trainer=fsdp` resume on another number of processes,
fall back past a damaged shard, and are read by the other commands (through the CLI, gloo on CPU)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, metric_series, run_cli
from record_batches import samples_by_step
from test_fsdp import BASE, MODELS

pytestmark = pytest.mark.slow

ARGS = [*BASE, *MODELS["gpt2"], "trainer=fsdp", "trainer.precision=32-true", "trainer.max_steps=12",
        "callbacks.last_checkpoint.every_n_train_steps=4"]
KILL_AFTER_8 = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=8"]


def launch(run_dir: Path, devices: int, cache_dir: Path, launch_name: str, extra: tuple[str, ...] = ()):
    """One launch on `devices` processes (global batch 8 whatever their number), recording its samples per step."""
    record = ["+callbacks.record._target_=record_batches.RecordBatches",
              f"+callbacks.record.dirpath={run_dir.parent}/batches-{run_dir.name}-{launch_name}"]
    return run_cli([*ARGS, f"trainer.devices={devices}", *record, *extra, f"run_dir={run_dir}",
                    f"paths.cache_dir={cache_dir}"], cwd=run_dir.parent, env=TEST_CALLBACKS)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from lmlab.checkpoint.sharded import load_sharded_checkpoint

    return load_sharded_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


def assert_continues_as(reference: Path, resumed: Path, launch_name: str, after: int) -> None:
    """The resumed launch saw the reference's samples at every step from `after` on, and ends with its weights."""
    ref_samples = samples_by_step(reference.parent / f"batches-{reference.name}-first", after=after - 1)
    samples = samples_by_step(resumed.parent / f"batches-{resumed.name}-{launch_name}", after=after - 1)
    assert sorted(samples) == list(range(after, 12)) and samples == ref_samples
    a, b = final_weights(reference), final_weights(resumed)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-5) for k in a)
    one, two = metric_series(reference, "val/loss"), metric_series(resumed, "val/loss")
    assert [s for s, _ in one] == [s for s, _ in two] == [4, 8, 12]
    assert torch.allclose(torch.tensor([v for _, v in two]), torch.tensor([v for _, v in one]), rtol=1e-5, atol=0)


def flip(path: Path, size: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + size] = bytes(b ^ 0xFF for b in data[middle:middle + size])
    path.write_bytes(bytes(data))


def test_sharded_checkpoints_resume_on_2_on_1_and_from_1_on_2_and_skip_a_damaged_shard(tmp_path, cache_dir):
    from lmlab.checkpoint.resume import newest_valid_checkpoint

    reference = tmp_path / "reference"
    assert (result := launch(reference, 2, cache_dir, "first")).returncode == 0, result.stderr[-3000:]

    killed = tmp_path / "killed2"
    assert launch(killed, 2, cache_dir, "first", tuple(KILL_AFTER_8)).returncode == -9
    newest, step, skipped = newest_valid_checkpoint(killed)
    assert step == 8 and not skipped and newest.is_dir()
    # each rank wrote its own shard; the manifest records every file's checksum
    manifest = (newest / "checksums.sha256").read_text()
    assert sorted(p.name for p in newest.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert all(name in manifest for name in ("__0_0.distcp", "__1_0.distcp", ".metadata", "meta.pt"))
    assert not list(killed.glob("checkpoints/*.tmp-*")) and not list(killed.glob("checkpoints/*.old-*"))

    # without trainer=fsdp a sharded checkpoint is refused in one line, the run untouched (but for the killed
    # launch's stale lock, which the refused launch takes over and releases)
    (killed / "lmlab.lock").unlink()
    before = sorted((p, p.stat().st_mtime_ns) for p in killed.rglob("*"))
    plain = [a for a in ARGS if a != "trainer=fsdp"]
    result = run_cli([*plain, f"run_dir={killed}", f"paths.cache_dir={cache_dir}"], cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "trainer=fsdp" in errors[0], result.stderr[-2000:]
    assert sorted((p, p.stat().st_mtime_ns) for p in killed.rglob("*")) == before

    # 2 -> 2 and 2 -> 1 processes; the second with every copy of step 8 damaged: it falls back to step 4
    on_two, on_one = tmp_path / "on_two", tmp_path / "on_one"
    shutil.copytree(killed, on_two)
    shutil.copytree(killed, on_one)
    step_8 = ["last.ckpt", "step000008.ckpt", "best-step000008.ckpt"]
    assert {p.name for p in (on_one / "checkpoints").iterdir()} <= {*step_8, "step000004.ckpt", "best-step000004.ckpt"}
    for copy in step_8:
        if (on_one / "checkpoints" / copy).exists():
            flip(on_one / "checkpoints" / copy / "__1_0.distcp")
    assert (result := launch(on_two, 2, cache_dir, "resumed")).returncode == 0, result.stderr[-3000:]
    assert_continues_as(reference, on_two, "resumed", after=8)
    assert (result := launch(on_one, 1, cache_dir, "resumed")).returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Skipping a checkpoint that does not load" in output and "__1_0.distcp" in output
    resumes = [json.loads(line) for line in (on_one / "resumes.jsonl").read_text().splitlines()]
    assert resumes[-1]["resumed_from"].endswith("step000004.ckpt"), resumes[-1]
    assert_continues_as(reference, on_one, "resumed", after=4)

    # 1 -> 2 processes
    from_one = tmp_path / "from_one"
    assert launch(from_one, 1, cache_dir, "first", tuple(KILL_AFTER_8)).returncode == -9
    assert sorted(p.name for p in (from_one / "checkpoints" / "last.ckpt").glob("*.distcp")) == ["__0_0.distcp"]
    assert (result := launch(from_one, 2, cache_dir, "resumed")).returncode == 0, result.stderr[-3000:]
    assert_continues_as(reference, from_one, "resumed", after=8)


def test_a_sharded_checkpoint_is_read_by_generate_and_converted_to_one_file(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    # with the samples at each validation (every rank runs the sharded forward) and the hf/ export
    args = [a for a in ARGS if a not in ("callbacks.samples=null", "callbacks.export_hf=null")]
    result = run_cli([*args, "trainer.devices=2", "trainer.max_steps=4", "callbacks.samples.max_new_tokens=6",
                      f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sharded = run_dir / "checkpoints" / "last.ckpt"
    assert sharded.is_dir() and (run_dir / "hf" / "model.safetensors").is_file()
    assert [line.split(":")[0] for line in (run_dir / "samples.txt").read_text().splitlines()] == ["step 4"] * 2

    out = tmp_path / "elsewhere" / "consolidated.ckpt"  # outside the run: it carries its run's config and tokenizer
    out.parent.mkdir()
    result = subprocess.run([sys.executable, "-m", "lmlab.checkpoint.consolidate", str(sharded), str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    whole = torch.load(out, map_location="cpu", weights_only=False)
    assert whole["global_step"] == 4 and out.with_name("consolidated.ckpt.sha256").is_file()
    a = final_weights(run_dir)
    assert a.keys() <= whole["state_dict"].keys() and all(torch.equal(a[k], whole["state_dict"][k]) for k in a)
    again = subprocess.run([sys.executable, "-m", "lmlab.checkpoint.consolidate", str(sharded), str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.startswith("error: out=") and len(again.stderr.splitlines()) == 1

    def generate(source: Path) -> list[dict]:
        result = subprocess.run([sys.executable, "-m", "lmlab.generate", str(source), "def main", "import os",
                                 "max_new_tokens=8", "device=cpu", f"cache_dir={cache_dir}"],
                                capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    assert generate(sharded) == generate(out)

    flip(sharded / "__0_0.distcp")
    result = subprocess.run([sys.executable, "-m", "lmlab.generate", str(sharded), "def main",
                             "max_new_tokens=4", "device=cpu"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "__0_0.distcp" in result.stderr
