"""Issue 21: every command keeps lmlab-train's promises. Each bad input to lmlab-train, lmlab-eval, lmlab-generate
and lmlab-compare, pointed at a finished and at a paused (unfinished) run, is one `error:` line on stderr naming
the key, file or value, exit status 2, every file of the target runs byte-identical and no new directory."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TEST_CALLBACKS, TINY, read_metrics, run_cli

from lmlab.checkpoint.integrity import verify_checkpoint

pytestmark = pytest.mark.slow
CLM = [*TINY, "trainer.max_steps=4", "trainer.val_check_interval=2", "callbacks.last_checkpoint.every_n_train_steps=2",
       "callbacks.samples=null"]
CLASSIFY = ["task=classify", "data.max_documents=32", "data.vocab_size=512", "data.max_length=32", "data.batch_size=8",
            "model.config.num_hidden_layers=1", "model.config.hidden_size=32", "model.config.num_attention_heads=2",
            "model.config.intermediate_size=64", "trainer.max_steps=4", "trainer.val_check_interval=2",
            "callbacks.last_checkpoint.every_n_train_steps=2", "callbacks.progress_bar=null",
            "callbacks.model_summary=null", "trainer.enable_progress_bar=false"]
# Classification and SFT launches pointed at the CLM run (their data is bad: refused before the run is touched);
# resume=force: a finished run is trained further, so its data is read.
LOCAL = ["task=classify", "model=bert-tiny", "data=local", "data.vocab_size=512", "data.batch_size=8", "resume=force"]
SFT = ["task=sft", "data=sft_local", "data.vocab_size=512", "data.batch_size=8", "resume=force"]


def snapshot(*roots: Path) -> dict[Path, bytes | None]:
    """Every file's bytes and every directory (None) under `roots`."""
    return {p: None if p.is_dir() else p.read_bytes() for root in roots for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache_dir) -> dict[str, dict[str, Path]]:
    """A finished CLM run and a finished classification run, and a paused copy of each (no finished.json, no
    hf/ export: a run stopped after its last checkpoint)."""
    root = tmp_path_factory.mktemp("runs")
    made = {"finished": {}, "paused": {}}
    for kind, args in (("clm", CLM), ("classify", CLASSIFY)):
        run_dir = root / "finished" / kind
        result = run_cli([*args, f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"], cwd=root)
        assert result.returncode == 0, result.stderr[-3000:]
        paused = root / "paused" / kind
        shutil.copytree(run_dir, paused)
        (paused / "finished.json").unlink()
        shutil.rmtree(paused / "hf")
        made["finished"][kind], made["paused"][kind] = run_dir, paused
    return made


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    """Data files that are wrong in each way the issue lists."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x00\x00" * 64)
    (tmp / "empty.txt").write_bytes(b"")
    (tmp / "tiny.txt").write_text("hi\n")
    for name, train in {"no_label": "text\nfoo\nbar\n", "labels": "text,label\nfoo,a\nbar,b\nbaz,c\n"}.items():
        (tmp / name).mkdir()
        (tmp / name / "train.csv").write_text(train)
        (tmp / name / "validation.csv").write_text(train)
    (tmp / "bad_jsonl").mkdir()
    (tmp / "bad_jsonl" / "train.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label"\n')
    (tmp / "bad_jsonl" / "validation.jsonl").write_text('{"text": "a", "label": "x"}\n')
    (tmp / "sft").mkdir()
    for split in ("train", "validation"):
        (tmp / "sft" / f"{split}.jsonl").write_text('{"prompt": "2+2?"}\n{"prompt": "3+3?"}\n')
    (tmp / "prompts.jsonl").write_text('{"text": "no prompt field"}\n')
    return tmp


Case = tuple[str, Callable[[dict[str, Path], Path], list[str]], str]
TRAIN_VALUES = [  # (override, what the one line says)
    ("trainer.accelerator=tpu", "trainer.accelerator='tpu' must be one of"),
    ("model.config.n_head=3", "model.config.n_head=3 must divide model.config.n_embd=64"),
    ("model.config.n_embd=-32", "model.config.n_embd=-32 must be a positive integer"),
    ("model.config.n_layer=0", "model.config.n_layer=0 must be a positive integer"),
    ("model.config.n_positions=abc", "model.config.n_positions='abc' must be a positive integer"),
    ("optimizer.betas=[0.9,1.5]", "optimizer.betas=[0.9, 1.5] must be two numbers in [0, 1)"),
    ("optimizer.betas=[0.9]", "optimizer.betas=[0.9] must be two numbers in [0, 1)"),
    ("optimizer.eps=0", "optimizer.eps=0 must be a positive number"),
    ("optimizer.lr=-1", "optimizer.lr=-1 must be a positive learning rate"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay=-0.1 must be a non-negative number"),
    ("scheduler.name=bogus", "scheduler.name='bogus' must be one of linear, cosine"),
    ("scheduler.num_warmup_steps=-5", "scheduler.num_warmup_steps=-5 must be a non-negative integer"),
    ("callbacks.last_checkpoint.every_n_train_steps=-1",
     "callbacks.last_checkpoint.every_n_train_steps=-1 must be a positive integer"),
    ("callbacks.speed_monitor.window=0", "callbacks.speed_monitor.window=0 must be a positive integer"),
    ("data.num_proc=0", "data.num_proc=0 must be a positive number of processes"),
    ("data.shard_bytes=0", "data.shard_bytes=0 must be a positive number of bytes"),
    ("data.source.validation_fraction=2", "data.source.validation_fraction=2 must be a fraction between 0 and 1"),
    ("data.source.validation_fraction=0", "data.source.validation_fraction=0 must be a fraction between 0 and 1"),
    ("trainer.max_steps=abc", "trainer.max_steps='abc' must be a positive integer"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0 must be a positive integer"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0 must be a positive integer"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1 must be a non-negative number"),
    ("trainer.precision=bogus", "trainer.precision='bogus' must be one of"),
    ("data.batch_size=0", "data.batch_size=0 must be a positive integer"),
    ("data.eval_batch_size=-2", "data.eval_batch_size=-2 must be a positive integer"),
    ("data.block_size=1", "data.block_size=1 must be an integer of at least 2"),
    ("data.block_size=4096", "data.block_size=4096 exceeds the model's context of 512 positions"),
    ("data.vocab_size=0", "data.vocab_size=0 must be a positive integer"),
    ("seed=-1", "seed=-1 must be a non-negative integer"),
    ("global_batch_size=0", "global_batch_size=0 must be a positive integer"),
    ("resume=sometimes", "resume='sometimes' is not one of auto, force, never"),
    ("trainer.bogus_key=1", "trainer.bogus_key"),
    ("model=no-such-model", "no-such-model"),
]
TRAIN_DATA = [  # (overrides given the bad files, what the one line says)
    (lambda b: ["trainer=fsdp", "trainer.accelerator=cpu", "trainer.strategy.cpu_offload=true"],
     "trainer.strategy.cpu_offload=true needs a GPU"),
    (lambda b: ["trainer=fsdp", "task.module.fused_loss=true"], "task.module.fused_loss=true does not run under"),
    (lambda b: ["trainer=fsdp", "trainer.strategy.sharding=zero3"],
     "trainer.strategy.sharding='zero3' must be one of full, hybrid, grad_op"),
    (lambda b: ["data.document_masking=maybe"], "data.document_masking='maybe' must be true or false"),
    (lambda b: ["model.mup=true", "peft=lora"], "model.mup=true with peft: LoRA adapts a pretrained model"),
    (lambda b: ["trainer.val_check_interval=0.5"], "needs trainer.check_val_every_n_epoch=1"),
    (lambda b: ["data=files"], "data.source.train=??? is a mandatory value"),
    (lambda b: ["data=files", f"data.source.train={b / 'missing.txt'}"], "matches no files"),
    (lambda b: ["data=files", f"data.source.train={b / 'tiny.txt'}", "data.source.encoding=klingon"],
     "data.source.encoding='klingon' is not a text encoding"),
    (lambda b: ["data=files", f"data.source.train={b / 'latin1.txt'}"], "is not valid utf-8 text at byte offset 3"),
    (lambda b: ["data=files", f"data.source.train={b / 'binary.txt'}"], "holds a NUL byte at byte offset 6"),
    (lambda b: ["data=files", f"data.source.train={b / 'empty.txt'}"], "holds no text"),
    (lambda b: ["data=files", f"data.source.train={b / 'tiny.txt'}", "resume=force"], "fewer than data.block_size=64"),
    (lambda b: [*LOCAL, f"data.source.path={b / 'no_label'}"], "data.label_column='label' is not a column"),
    (lambda b: [*LOCAL, f"data.source.path={b / 'labels'}", "data.text_column=sentence"],
     "data.text_column='sentence' is not a column"),
    (lambda b: [*LOCAL, f"data.source.path={b / 'labels'}", "data.labels=[a,b]"], "holds labels 'c' not in"),
    (lambda b: [*LOCAL, f"data.source.path={b / 'bad_jsonl'}"], "bad_jsonl"),
    (lambda b: [*SFT, f"data.source.path={b / 'sft'}"], "response"),
    (lambda b: [f"ckpt_path={b / 'missing.ckpt'}"], "ckpt_path="),
    (lambda b: [f"ckpt_path={b / 'tiny.txt'}"], "is truncated or not a checkpoint"),
    (lambda b: ["task=classify", "model=bert-tiny", f"model.init_from={b / 'nowhere'}", "data.batch_size=8",
                "resume=force"],
     "does not exist"),
    (lambda b: ["callbacks=downstream_eval", "callbacks.downstream_eval.tasks=[no_such_task]"],
     "callbacks.downstream_eval.tasks: no lm-eval task named 'no_such_task'"),
    (lambda b: ["callbacks=downstream_eval", "callbacks.downstream_eval.every_n_steps=0"],
     "callbacks.downstream_eval.every_n_steps=0 must be a positive integer"),
]
EVAL = [  # (arguments given the classification run, what the one line says)
    (lambda r, b: [], "no model to evaluate"),
    (lambda r, b: [f"ckpt_path={r / 'checkpoints' / 'last.ckpt'}", "batch_size=0"], "batch_size=0 must be a positive"),
    (lambda r, b: [f"ckpt_path={r / 'checkpoints' / 'last.ckpt'}", "batch_size=abc"], "batch_size='abc' must be"),
    (lambda r, b: [f"ckpt_path={r / 'checkpoints' / 'last.ckpt'}", "accelerator=tpu"], "accelerator='tpu' must be"),
    (lambda r, b: [f"ckpt_path={r / 'checkpoints' / 'last.ckpt'}", "split=''"], "split='' must be a split name"),
    (lambda r, b: [str(r), "batch_size=-3"], "batch_size=-3 must be a positive"),
    (lambda r, b: [f"ckpt_path={r / 'checkpoints' / 'missing.ckpt'}"], "is not a classification run or its checkpoint"),
    (lambda r, b: [str(r / "checkpoints" / "missing.ckpt")], "is not a classification run or its checkpoint"),
    (lambda r, b: [f"ckpt_path={b}"], "is not a classification run or its checkpoint"),
    (lambda r, b: [f"ckpt_path={r / 'metrics.csv'}"], "is not a classification run or its checkpoint"),
    (lambda r, b: [f"ckpt_path={b / 'tiny.txt'}"], "is not a classification run or its checkpoint"),
    (lambda r, b: [f"ckpt_path={r / 'checkpoints' / 'last.ckpt'}", "bogus=1"], "bogus"),
    (lambda r, b: [f"ckpt_path={r.parent / 'clm' / 'checkpoints' / 'last.ckpt'}"], "is a language-model run"),
    (lambda r, b: [str(r), f"pairs={b / 'nowhere.jsonl'}"], "must be an existing preference file or directory"),
    (lambda r, b: [str(r), f"pairs={b / 'tiny.txt'}"], "not a reward model (task=reward)"),
]
GENERATE = [  # (arguments given the CLM run, what the one line says)
    (lambda r, b: [str(r)], "no prompts"),
    (lambda r, b: [str(r), "hi", "sample=true", "temperature=nan"], "temperature=nan must be a positive"),
    (lambda r, b: [str(r), "hi", "sample=true", "temperature=0"], "temperature=0.0 must be a positive"),
    (lambda r, b: [str(r), "hi", "max_new_tokens=0"], "max_new_tokens=0 must be positive"),
    (lambda r, b: [str(r), "hi", "max_new_tokens=600"], "max_new_tokens=600 leaves no room"),
    (lambda r, b: [str(r), "hi", "top_p=1.5"], "top_p=1.5 must be in (0, 1]"),
    (lambda r, b: [str(r), "hi", "top_p=nan"], "top_p=nan must be in (0, 1]"),
    (lambda r, b: [str(r), "hi", "top_k=0"], "top_k=0 must be positive"),
    (lambda r, b: [str(r), "hi", "device=toaster"], "device='toaster' is not a device"),
    (lambda r, b: [str(r), "hi", f"out={b}"], "is a directory"),
    (lambda r, b: [str(r), f"file={b / 'missing.txt'}"], "does not exist"),
    (lambda r, b: [str(r), f"file={b / 'prompts.jsonl'}"], "must be a JSON object with a 'prompt'"),
    (lambda r, b: [str(b / "nowhere"), "hi"], "does not exist"),
    (lambda r, b: [str(r / "metrics.csv"), "hi"], "is a file but not a checkpoint of an lmlab run"),
    (lambda r, b: [str(b), "hi"], "is not an lmlab run directory"),
    (lambda r, b: [str(r), "hi", "max_new_tokens=many"], "max_new_tokens='many' is not an integer"),
    (lambda r, b: [str(r), "hi", "temprature=2"], "unknown key 'temprature'"),
]
COMPARE = [  # (arguments given the CLM run, what the one line says)
    (lambda r, b: [str(b / "no_label")], "no run directories in"),
    (lambda r, b: [str(b / "nowhere")], "does not exist"),
    (lambda r, b: [str(b / "tiny.txt")], "is not a directory"),
    (lambda r, b: [str(r), "metric=val/bogus"], "metric=/sort= val/bogus: logged by none of the 1 runs"),
    (lambda r, b: [str(r), "sort=val/bogus"], "metric=/sort= val/bogus: logged by none"),
    (lambda r, b: [str(r), "mode=median"], "mode='median' must be min or max"),
    (lambda r, b: [str(r), "source=neptune"], "source='neptune' must be one of csv, wandb, mlflow, tensorboard"),
    (lambda r, b: [str(r), "source=mlflow"], "(it was not run with logger=mlflow)"),
    (lambda r, b: [str(r), "metrc=val/loss"], "unknown key 'metrc'"),
]


def base(overrides: list[str]) -> list[str]:
    """The CLM run's arguments, without its data and model keys when `overrides` switch the task."""
    other_task = any(o.startswith("task=") for o in overrides)
    return [a for a in CLM if not (other_task and a.startswith(("data.", "model.", "callbacks.samples")))]


CASES: list[Case] = [
    *((f"train {o}", lambda runs, b, o=o: [*CLM, f"run_dir={runs['clm']}", o], m) for o, m in TRAIN_VALUES),
    *((f"train data {i}", lambda runs, b, f=f: [*base(f(b)), f"run_dir={runs['clm']}", *f(b)], m)
      for i, (f, m) in enumerate(TRAIN_DATA)),
    *((f"eval {i}", lambda runs, b, f=f: ["lmlab.evaluate", *f(runs["classify"], b)], m)
      for i, (f, m) in enumerate(EVAL)),
    *((f"generate {i}", lambda runs, b, f=f: ["lmlab.generate", *f(runs["clm"], b)], m)
      for i, (f, m) in enumerate(GENERATE)),
    *((f"compare {i}", lambda runs, b, f=f: ["lmlab.compare", *f(runs["clm"], b)], m)
      for i, (f, m) in enumerate(COMPARE)),
]


def test_there_are_at_least_sixty_bad_inputs():
    assert len(CASES) >= 60


@pytest.mark.parametrize("state", ["finished", "paused"])
@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_touches_nothing(runs, bad_files, cache_dir, state, name, args, message):
    targets = runs[state]
    argv = args(targets, bad_files)
    module = argv.pop(0) if argv[0].startswith("lmlab.") else "lmlab.train"
    if module == "lmlab.train":
        argv.append(f"paths.cache_dir={cache_dir}")
    cwd = bad_files.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    before = snapshot(targets["clm"], targets["classify"], bad_files, cwd)
    result = run_cli(argv, cwd=cwd, module=module, timeout=300)
    assert result.returncode == 2, (argv, result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert lines[-1:] == [line for line in lines if line.startswith("error:")], result.stderr[-3000:]
    assert len(lines) >= 1 and message in lines[-1], (message, result.stderr[-2000:])
    assert not any(line.startswith("error:") for line in result.stdout.splitlines())
    assert "Traceback" not in result.stderr
    after = snapshot(targets["clm"], targets["classify"], bad_files, cwd)
    assert after.keys() == before.keys(), sorted(map(str, after.keys() ^ before.keys()))
    assert [p for p in before if before[p] != after[p]] == []


def flip_4kib(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_every_command_refuses_a_damaged_checkpoint_naming_the_previous_good_one(runs, tmp_path, cache_dir, damage):
    """4 KiB flipped (its .sha256 disagrees) or the file cut in half: lmlab-eval, lmlab-generate, a resume from
    it and model.init_from give one line naming the file and the intact checkpoint to use, exit 2, nothing
    written."""
    copies = {kind: tmp_path / kind for kind in ("clm", "classify")}
    for kind, copy in copies.items():
        shutil.copytree(runs["paused"][kind], copy)
        last = copy / "checkpoints" / "last.ckpt"
        if damage == "flipped":
            flip_4kib(last)
        else:
            last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    out = tmp_path / "generated.jsonl"
    commands = [
        ("lmlab.evaluate", [f"ckpt_path={copies['classify'] / 'checkpoints' / 'last.ckpt'}"], "ckpt_path", "classify"),
        ("lmlab.generate", [str(copies["clm"]), "hi", f"out={out}"], "source", "clm"),
        ("lmlab.generate", [str(copies["clm"] / "checkpoints" / "last.ckpt"), "hi"], "source", "clm"),
        ("lmlab.train", [*CLM, f"run_dir={tmp_path / 'resumed'}", f"paths.cache_dir={cache_dir}",
                         f"ckpt_path={copies['clm'] / 'checkpoints' / 'last.ckpt'}"], "ckpt_path", "clm"),
        ("lmlab.train", [*CLASSIFY, f"run_dir={tmp_path / 'tuned'}", f"model.init_from={copies['clm']}",
                         f"paths.cache_dir={cache_dir}"], "model.init_from", "clm"),
    ]
    before = snapshot(tmp_path)
    for module, argv, key, kind in commands:
        result = run_cli(argv, cwd=tmp_path, module=module, timeout=300)
        assert result.returncode == 2, (module, argv, result.stderr[-3000:])
        assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        line = result.stderr.strip().splitlines()[-1]
        reason = "its SHA-256 differs" if damage == "flipped" else "SHA-256"
        assert f"{key}='{copies[kind] / 'checkpoints' / 'last.ckpt'}' is damaged" in line and reason in line, line
        instead = Path(line.split(f": use {key}=")[1])
        assert instead.parent == copies[kind] / "checkpoints" and instead.name != "last.ckpt", line
        verify_checkpoint(instead)
        assert snapshot(tmp_path) == before, module
    assert json.loads((runs["finished"]["clm"] / "finished.json").read_text())["global_step"] == 4


def test_the_hf_export_gets_the_mode_the_umask_allows(runs):
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (runs["finished"]["clm"] / "hf").iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o666 & ~umask}, modes


@pytest.mark.parametrize("failure", [
    ["+callbacks.broken._target_=no.such.Callback"],  # an error lmlab does not catch: Hydra reports the job
    ["-m", "optimizer.lr=-1,-2"],  # a multirun whose jobs fail: error.txt, multirun.yaml, the sweep summary
])
def test_a_secret_of_a_failing_launch_appears_in_no_file_and_no_console_output(tmp_path, cache_dir, failure):
    secret = "hf_SECRET21failing"
    result = run_cli([*failure, *TINY, "trainer.max_steps=2", f"+hf_token={secret}", f"paths.root_dir={tmp_path}",
                      f"paths.cache_dir={cache_dir}"], cwd=tmp_path, timeout=600)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Error executing job with overrides" in output or "error.txt" in output, output[-3000:]
    assert "hf_token=***" in output and secret not in output
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name in ("train.log", "error.txt") for p in written), written
    assert [p for p in written if secret.encode() in p.read_bytes()] == []


def test_sigkill_right_after_each_checkpoint_rename_loses_no_metrics_row(tmp_path, cache_dir, monkeypatch):
    """Killed right after step 2's and step 5's last.ckpt is renamed into place (the row of those steps is
    logged after the checkpoint callbacks in Lightning's loop), then relaunched: metrics.csv holds every row of
    the uninterrupted run exactly once."""
    monkeypatch.setenv("PYTHONPATH", TEST_CALLBACKS["PYTHONPATH"])
    args = [*TINY, "trainer.max_steps=7", "trainer.val_check_interval=3", "trainer.log_every_n_steps=1",
            "callbacks.last_checkpoint.every_n_train_steps=1", "callbacks.samples=null", "callbacks.export_hf=null",
            f"paths.cache_dir={cache_dir}"]
    reference = run_cli([*args, f"run_dir={tmp_path / 'reference'}"], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]
    killed = tmp_path / "killed"
    for step in (2, 5):
        plugin = f"trainer.plugins=[{{_target_:kill_after_save.KillAfterSave,steps:[{step}]}}]"
        result = run_cli([*args, f"run_dir={killed}", plugin], cwd=tmp_path)
        assert result.returncode == -9, result.stderr[-3000:]
        assert not (killed / "finished.json").exists()
    result = run_cli([*args, f"run_dir={killed}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout + result.stderr

    def rows(run_dir: Path) -> list[tuple]:
        return [(r["step"], tuple(sorted(k for k, v in r.items() if v and k != "train/tokens_per_sec")))
                for r in read_metrics(run_dir)]

    assert rows(killed) == rows(tmp_path / "reference")
    # a row's step counts the optimizer steps done (tracking/loggers.py:StepsDone): steps 1..7, each once
    assert sorted(int(r[0]) for r in rows(killed) if "train/loss" in r[1]) == list(range(1, 8))
