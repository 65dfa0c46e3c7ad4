"""lmlab.runs, piece by piece: the secrets rule, the run-dir lock, checkpoint checksums, durable metrics,
config validation, the output-dir preflight and strict text decoding (fast, no training)."""

from __future__ import annotations

import csv
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import compose
from omegaconf import open_dict

from lmlab.checkpoint.integrity import DamagedCheckpoint, sidecar, verify_checkpoint
from lmlab.errors import LmlabError
from lmlab.runs import lock, preflight
from lmlab.runs.validate import config_problems
from lmlab.tracking.metrics import DurableCSVLogger, drop_rows_after
from lmlab.utils import redact


def test_secret_rule_masks_secret_keys_and_token_like_values_only():
    assert redact.is_secret("+hf_token", "hf_SECRET999")
    assert redact.is_secret("wandb.api_key", "k") and redact.is_secret("db_password", "p")
    assert redact.is_secret("model.tokenizer", "hf_abcdefgh1234")  # a token pasted under a token-ish key
    assert not redact.is_secret("model.tokenizer", "gpt2")
    assert not redact.is_secret("data.tokenizer", "outputs/mlm/bert-tiny/hf")
    assert not redact.is_secret("max_new_tokens", 48) and not redact.is_secret("hf_token", None)
    name = redact.redact_override_dirname("+hf_token=hf_SECRET999,data.block_size=64,x=[a,b]")
    assert name == "+hf_token=***,data.block_size=64,x=[a,b]"
    assert redact.redact_overrides(["+db.password=hunter22", "lr=3"]) == ["+db.password=***", "lr=3"]


def test_known_secrets_are_masked_inside_other_strings_and_log_records():
    redact.remember(["hf_UNIQUE4242"])
    masked = redact.redact({"paths": {"run_dir": "/out/+hf_token=hf_UNIQUE4242"}})
    assert masked == {"paths": {"run_dir": "/out/+hf_token=***"}}
    record = logging.LogRecord("x", logging.INFO, "f", 1, "run dir %s", ("/out/hf_UNIQUE4242",), None)
    redact.RedactingFilter().filter(record)
    assert record.getMessage() == "run dir /out/***"


def test_second_holder_of_a_run_dir_is_refused_with_its_pid_and_host(tmp_path, monkeypatch):
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = lock._start_time(holder.pid)
        (tmp_path / lock.LOCK_FILE).write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "start": start, "since": "then"}))
        with pytest.raises(LmlabError, match=f"in use by another lmlab-train \\(pid {holder.pid} on "):
            lock.RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    mine = lock.RunLock(tmp_path)
    mine.acquire()  # the holder died: its lock is stale and taken over
    assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    mine.release()
    assert not (tmp_path / lock.LOCK_FILE).exists()


@pytest.mark.parametrize("garbage", [b"", b'{"pid": 12', b"\x00\x00", b"[1, 2]"])
def test_an_empty_or_garbage_lock_is_taken_over_with_a_warning(tmp_path, monkeypatch, caplog, garbage):
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / lock.LOCK_FILE).write_bytes(garbage)  # what a crash mid-write of an older lmlab left
    mine = lock.RunLock(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lmlab.runs.lock"):
        mine.acquire()
    assert "names no holder (empty or garbage" in caplog.text
    assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == [lock.LOCK_FILE]  # the temp file it was linked from went
    mine.release()
    assert not (tmp_path / lock.LOCK_FILE).exists()


def test_ddp_children_and_other_ranks_do_not_take_the_lock(tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process Lightning re-executed for DDP
    lock.RunLock(tmp_path).acquire()
    assert not (tmp_path / lock.LOCK_FILE).exists()
    monkeypatch.setenv("SLURM_PROCID", "0")  # SLURM's global rank wins over LOCAL_RANK
    assert lock.launch_rank_zero()


def test_same_slurm_job_takes_over_its_own_lock_after_a_requeue(tmp_path, monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    (tmp_path / lock.LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "other-node", "slurm_job_id": "4242"}))
    mine = lock.RunLock(tmp_path)
    mine.acquire()
    assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["pid"] == os.getpid()
    mine.release()


def _save(path: Path, state_dict: dict) -> None:
    from lmlab.checkpoint.files import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"global_step": 3, "state_dict": state_dict,
                                          "hyper_parameters": {"hub": {"hf_token": "hf_abcdefgh"}}}, path)


def test_checksum_catches_bytes_damaged_inside_a_tensor(tmp_path):
    path = tmp_path / "step.ckpt"
    _save(path, {"w": torch.arange(100_000, dtype=torch.float32)})
    verify_checkpoint(path)
    assert torch.load(path, weights_only=False)["hyper_parameters"] == {"hub": {"hf_token": "***"}}
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=False)["global_step"] == 3  # loads: only the checksum can tell
    with pytest.raises(DamagedCheckpoint, match="SHA-256"):
        verify_checkpoint(path)


def test_non_finite_weights_are_never_written_and_the_last_good_checkpoint_stays(tmp_path):
    path = tmp_path / "last.ckpt"
    _save(path, {"w": torch.ones(4)})
    good = path.read_bytes()
    with pytest.raises(LmlabError, match="w holds NaN or inf"):
        _save(path, {"w": torch.tensor([1.0, float("nan"), 2.0, 3.0])})
    assert path.read_bytes() == good
    verify_checkpoint(path)
    sidecar(path).unlink()  # a checkpoint without checksum (older lmlab) is checked for finiteness
    verify_checkpoint(path)


def test_run_guard_stops_on_a_non_finite_loss():
    from lmlab.runs.guard import RunGuard

    guard, trainer = RunGuard(Path(".")), SimpleNamespace(global_step=3, log_every_n_steps=2)
    guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(float("nan"))}, None, 0)  # not yet read
    trainer.global_step = 4
    with pytest.raises(LmlabError, match="train/loss is NaN or inf by step 4"):
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, None, 1)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_rows_are_on_disk_at_once_and_continued_after_a_resume(tmp_path):
    logger = DurableCSVLogger(tmp_path, name="", version="")
    for step in range(4):  # Lightning's index of the step just taken: rows at the steps done, 1 to 4
        logger.log_metrics({"train/loss": 4.0 - step}, step=step)
        assert len(_rows(tmp_path)) == step + 1  # on disk at once: no buffering
    assert drop_rows_after(tmp_path, 2) == 2  # resumed from step 2's checkpoint: steps 3 and 4 are logged again
    logger = DurableCSVLogger(tmp_path, name="", version="")
    logger.log_metrics({"train/loss": 2.0, "val/loss": 9.0}, step=2)  # a new column rewrites the header
    rows = [(r["step"], r["train/loss"], r["val/loss"]) for r in _rows(tmp_path)]
    assert rows == [("1", "4.0", ""), ("2", "3.0", ""), ("3", "2.0", "9.0")]


def test_validate_config_gathers_every_problem_into_one_message():
    cfg = compose(["trainer.max_steps=abc", "data.batch_size=0", "data.block_size=1", "trainer.precision=bogus",
                   "scheduler.num_warmup_steps=-5", "data=files"])
    with open_dict(cfg):
        del cfg["hydra"]
    assert config_problems(cfg) == [
        "data.source.train=??? is a mandatory value: set it on the command line (data.source.train=...)",
        "trainer.max_steps='abc' must be a positive integer (-1: no limit)",
        "trainer.precision='bogus' must be one of 16-true, 16-mixed, bf16-true, bf16-mixed, 32-true, 64-true",
        "data.batch_size=0 must be a positive integer",
        "data.block_size=1 must be an integer of at least 2 (an input and its label)",
        "scheduler.num_warmup_steps=-5 must be a non-negative integer",
    ]


def test_preflight_names_a_read_only_or_full_output_directory(tmp_path, monkeypatch):
    assert preflight.directory_problem(tmp_path / "a" / "b") is None
    real = os.statvfs

    class ReadOnly:
        def __init__(self, path):
            self.__dict__.update({k: getattr(real(path), k) for k in dir(real(path)) if k.startswith("f_")})
            self.f_flag |= os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", ReadOnly)
    problem = preflight.directory_problem(tmp_path / "a")
    assert problem == f"{tmp_path} is on a read-only filesystem (Read-only file system)"
    monkeypatch.setattr(os, "statvfs", real)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: SimpleNamespace(free=0))
    assert preflight.directory_problem(tmp_path) == f"{tmp_path}: No space left on device (0 bytes free)"


@pytest.mark.parametrize(("content", "message"), [
    ("héllo".encode("latin-1") + b" world\n", "is not valid utf-8 text at byte offset 1"),
    (b"text\x00\x01\x02binary", "holds a NUL byte at byte offset 4"),
    (b"", "holds no text: its files are empty"),
])
def test_corpus_that_is_not_text_is_an_error_naming_file_and_byte_offset(tmp_path, content, message):
    from lmlab.data.sources import TextFiles

    (tmp_path / "a.txt").write_bytes(content)
    with pytest.raises(LmlabError, match=message):
        TextFiles(train=str(tmp_path / "*.txt")).check_text()
    if content:
        TextFiles(train=str(tmp_path / "*.txt"), errors="replace").check_text()  # accepted on request


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_the_file(tmp_path, monkeypatch):
    from lmlab.checkpoint import files as checkpoint_io
    from lmlab.runs.lifecycle import environment_error

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(checkpoint_io.torch, "save", full)
    monkeypatch.setattr(checkpoint_io.shutil, "disk_usage", lambda path: SimpleNamespace(free=0))
    with pytest.raises(OSError) as raised:
        _save(tmp_path / "last.ckpt", {"w": torch.ones(2)})
    assert str(environment_error(raised.value, str(tmp_path))).startswith(
        f"{tmp_path / 'last.ckpt'}: No space left on device (while writing the run's files")
    assert not list(tmp_path.iterdir())  # no temp file left behind
    no_name = OSError(28, "No space left on device")  # Python's own write errors carry no file name
    assert str(environment_error(no_name, "/runs/a")).startswith("a file under /runs/a: No space left on device")
