"""Issue 12 through the CLI: nothing lost (kill -9, damaged checkpoints, a second writer), nothing leaked
(a secret override), and every refused relaunch leaves a finished run's directory byte-identical."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, TINY, read_metrics, run_cli
from resume_helpers import SHORT, assert_same_params, kill_group, launch, wait_for_step
from safetensors.torch import load_file

pytestmark = pytest.mark.slow
PYTHONPATH = TEST_CALLBACKS["PYTHONPATH"]
# Epochs of 4 steps (3 documents), a checkpoint every step, metrics logged every 2 steps, hf/ export on.
RUN = [*(a for a in SHORT if not a.startswith(("trainer.limit_train_batches", "callbacks.export_hf"))),
       "data.max_documents=3", "trainer.log_every_n_steps=2"]
SECRET = "hf_SECRET999"


def pause_at(step: int, go: Path) -> list[str]:
    """Overrides that hold the run before step `step + 1` until the file `go` exists."""
    return ["+callbacks.pause._target_=pause_at_step.WaitForFile", f"+callbacks.pause.step={step}",
            f"+callbacks.pause.path={go}"]


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def metric_rows(run_dir: Path) -> list[tuple]:
    """(step, metrics present, train/loss) of every row; tokens/s is left out (its window restarts on resume)."""
    rows = []
    for row in read_metrics(run_dir):
        keys = tuple(sorted(k for k, v in row.items() if v and k not in ("step", "train/tokens_per_sec")))
        rows.append((int(row["step"]), keys, row.get("train/loss")))
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    """An uninterrupted run; while it is held at step 3, a second launch into its directory is tried."""
    tmp = tmp_path_factory.mktemp("reference")
    run_dir, go = tmp / "run", tmp / "go"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", PYTHONPATH)  # pause_at_step, imported by the launched run
        with launch([*args, *pause_at(3, go)], tmp, tmp / "first.log") as first:
            wait_for_step(run_dir, 3, first)
            second = run_cli(args, cwd=tmp)
            go.touch()
            first.wait(timeout=900)
    return run_dir, first, second


def test_a_second_launch_into_a_running_run_is_refused_and_the_first_finishes_untouched(reference):
    run_dir, first, second = reference
    assert second.returncode == 2
    errors = error_lines(second)
    assert len(errors) == 1 and f"is in use by another lmlab-train (pid {first.pid} on " in errors[0], second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, (run_dir.parent / "first.log").read_text()[-3000:]
    assert (run_dir / "finished.json").is_file() and not (run_dir / "lmlab.lock").exists()
    rows = metric_rows(run_dir)
    assert len(rows) == len({(step, keys) for step, keys, _ in rows}), "a metrics row appears twice"
    assert not list((run_dir / "checkpoints").glob("*-v1.ckpt"))


def test_kill_9_then_a_damaged_newest_checkpoint_resumes_from_the_previous_with_every_metric_once(
        reference, tmp_path, cache_dir, monkeypatch):
    """Held at step 10 and killed with SIGKILL; 4 KiB inside every step-10 checkpoint are flipped (they still
    load). The resume skips them with a warning, resumes from step 9 and ends equal to the uninterrupted run:
    same parameters, finite hf/ export, and metrics.csv holds every row of it exactly once."""
    reference_dir = reference[0]
    run_dir = tmp_path / "run"
    args = [*RUN, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    monkeypatch.setenv("PYTHONPATH", PYTHONPATH)  # pause_at_step, imported by the launched run
    with launch([*args, *pause_at(10, tmp_path / "never")], tmp_path, tmp_path / "killed.log") as process:
        wait_for_step(run_dir, 10, process)
        while not (tmp_path / "never.waiting").exists():  # step 10's checkpoints and rows are all written
            assert process.poll() is None
            time.sleep(0.05)
        kill_group(process)
    damaged = [p for p in (run_dir / "checkpoints").glob("*.ckpt")
               if torch.load(p, map_location="cpu", weights_only=False)["global_step"] == 10]
    assert {p.name for p in damaged} >= {"last.ckpt", "step000010.ckpt"}
    for path in damaged:
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
        path.write_bytes(bytes(data))

    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count("Skipping a checkpoint that does not load") == len(damaged)
    assert "its SHA-256 differs" in output
    assert f"Resuming from {run_dir / 'checkpoints' / 'step000009.ckpt'}" in output
    assert_same_params(reference_dir, run_dir)
    assert all(torch.isfinite(t).all() for t in load_file(run_dir / "hf" / "model.safetensors").values())
    assert metric_rows(run_dir) == metric_rows(reference_dir)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache_dir):
    """A finished run launched with a secret override and W&B (offline); its console output."""
    root = tmp_path_factory.mktemp("secret")
    args = [*TINY, "trainer.max_steps=4", "trainer.val_check_interval=2",
            "callbacks.last_checkpoint.every_n_train_steps=2", f"+hf_token={SECRET}", "logger=wandb",
            f"paths.root_dir={root}", f"paths.cache_dir={cache_dir}"]
    result = run_cli(args, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (root / "outputs" / "clm").iterdir()
    return root, run_dir, args, result


def test_a_secret_override_appears_in_no_file_and_no_console_output(finished):
    root, run_dir, _, result = finished
    assert run_dir.name.startswith("hf_token_") and SECRET not in str(run_dir)  # the key, never the value
    assert (run_dir / "wandb").is_dir() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert SECRET not in result.stdout + result.stderr
    leaks = [p for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks
    assert "hf_token: '***'" in (run_dir / "config.yaml").read_text()


def _bad_inputs(tmp: Path) -> list[tuple[list[str], int, str]]:
    """(overrides, exit status, what the one line says) for each refused relaunch (issue 12, item 5)."""
    (tmp / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x00\x00" * 64)
    (tmp / "empty.txt").write_bytes(b"")
    (tmp / "sst2").mkdir()
    (tmp / "sst2" / "train.tsv").write_bytes(b"")
    (tmp / "sst2" / "dev.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    return [
        ([], 0, ""),  # the same command: already finished, nothing to do
        (["trainer.max_steps=abc"], 2, "trainer.max_steps='abc' must be a positive integer"),
        (["data.batch_size=0"], 2, "data.batch_size=0 must be a positive integer"),
        (["data.block_size=1"], 2, "data.block_size=1 must be an integer of at least 2"),
        (["trainer.precision=bogus"], 2, "trainer.precision='bogus' must be one of"),
        (["scheduler.num_warmup_steps=-5"], 2, "scheduler.num_warmup_steps=-5 must be a non-negative integer"),
        (["data=files"], 2, "data.source.train=??? is a mandatory value"),
        (["data=files", f"data.source.train={tmp / 'latin1.txt'}"], 2, "is not valid utf-8 text at byte offset 3"),
        (["data=files", f"data.source.train={tmp / 'binary.txt'}"], 2, "holds a NUL byte at byte offset 6"),
        (["resume=force", "data=files", f"data.source.train={tmp / 'empty.txt'}"], 2, "holds no text"),
        (["task=classify", "model=bert-tiny", "data=sst2_local", f"data.source.path={tmp / 'sst2'}"], 2,
         "the train split of data.source is empty"),
    ]


def test_every_refused_relaunch_leaves_the_finished_run_byte_identical(finished, tmp_path):
    _, run_dir, args, _ = finished
    before = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    assert run_dir / "train.log" in before
    for overrides, status, message in _bad_inputs(tmp_path):
        base = [a for a in args if not a.startswith(("data.", "model."))] if "task=classify" in overrides else args
        result = run_cli([*base, f"run_dir='{run_dir}'", *overrides], cwd=tmp_path)
        assert result.returncode == status, (overrides, result.stderr[-2000:])
        if status:
            errors = error_lines(result)
            assert len(errors) == 1 and message in errors[0], (overrides, result.stderr[-2000:])
            assert "Traceback" not in result.stderr, overrides
        else:
            assert "already finished" in result.stdout
        assert SECRET not in result.stdout + result.stderr
        after = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
        assert after.keys() == before.keys(), (overrides, after.keys() ^ before.keys())
        assert [p for p in before if before[p] != after[p]] == [], overrides


@pytest.mark.skipif(not Path("/sys").is_dir() or shutil.disk_usage("/sys").free > 0, reason="needs a full filesystem")
def test_a_full_output_directory_is_one_line_naming_path_and_cause(tmp_path):
    result = run_cli([*TINY, "run_dir=/sys/lmlab-run"], cwd=tmp_path)  # sysfs: 0 bytes free
    assert result.returncode == 2
    assert error_lines(result) == ["error: run_dir='/sys/lmlab-run' cannot be written: /sys: No space left on "
                                   "device (0 bytes free)"]
