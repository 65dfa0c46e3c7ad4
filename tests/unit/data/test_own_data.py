"""Fine-tuning on your own labelled files (`data=local`) for N epochs, then `lmlab-eval split=test`."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_BERT, read_metrics, train_in_process
from labelled_data import write_labelled_csvs
from omegaconf import OmegaConf

from lmlab.data.classification_sources import LocalSplits
from lmlab.errors import LmlabError

LABELS = ["politics", "sports", "tech", "volcano"]  # inferred: sorted, whatever order the rows come in


def evaluate_checkpoint(ckpt, split: str) -> dict:
    from lmlab.evaluate import evaluate

    evaluate(OmegaConf.create({"ckpt_path": str(ckpt), "split": split, "batch_size": None, "accelerator": "cpu",
                               "output_dir": None}))
    return json.loads((ckpt.parent.parent / "eval" / f"{split}_metrics.json").read_text())


def test_epochs_then_eval_on_test_equals_the_last_validation(tmp_path, cache_dir):
    data = write_labelled_csvs(tmp_path / "data")
    cfg, _ = train_in_process(tmp_path, cache_dir, [*TINY_BERT, f"data.source.path={data}", "trainer.max_epochs=2"])
    run_dir = tmp_path / "run"
    steps_per_epoch = 124 // 16  # 124 training rows, batch 16: 7 whole batches (lmlab.distributed)

    # two epochs, validated at the end of each (at the steps done, as the checkpoints count them)
    validations = [r for r in read_metrics(run_dir) if r.get("val/accuracy")]
    assert [(int(r["epoch"]), int(r["step"])) for r in validations] == \
        [(0, steps_per_epoch), (1, 2 * steps_per_epoch)]
    assert all(r[f"val/f1/{name}"] for r in validations for name in LABELS)  # per-class F1 at each validation

    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert last["global_step"] == 2 * steps_per_epoch  # the final weights, though not a multiple of 100 steps
    assert last["hyper_parameters"]["labels"] == LABELS
    assert list((run_dir / "checkpoints").glob("best-step*.ckpt"))  # the best by val/accuracy is kept too

    report = evaluate_checkpoint(run_dir / "checkpoints" / "last.ckpt", "test")
    assert report["step"] == 2 * steps_per_epoch and report["epoch"] == 2
    final = validations[-1]
    for name in ("accuracy", "f1_macro", "mcc"):  # test.csv is validation.csv: the same numbers, exactly
        assert report[f"test/{name}"] == float(final[f"val/{name}"]), name
    for name in LABELS:
        assert report["per_class"][name]["f1"] == float(final[f"val/f1/{name}"]), name
    assert report["per_class"]["volcano"]["support"] == 2
    matrix = report["confusion_matrix"]
    assert matrix["labels"] == LABELS
    assert [sum(row) for row in matrix["matrix"]] == [report["per_class"][n]["support"] for n in LABELS]
    correct = sum(matrix["matrix"][i][i] for i in range(len(LABELS)))
    assert correct / 32 == pytest.approx(report["test/accuracy"])
    assert (run_dir / "eval" / "test_confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_local_files_are_found_by_split_name_and_a_missing_one_is_one_line(tmp_path):
    data = write_labelled_csvs(tmp_path / "data")
    source = LocalSplits(path=str(data), files={"train": None, "validation": None, "test": None})
    assert source.file("test").name == "test.csv" and len(source.load("train")) == 124
    fingerprint = source.fingerprint()
    (data / "test.csv").unlink()
    assert source.fingerprint() != fingerprint  # test is optional for training, and part of the fingerprint
    with pytest.raises(LmlabError, match=r"holds no test file .*data.source.files.test="):
        source.file("test")
    (data / "validation.jsonl").write_text('{"text": "x", "label": "tech"}\n')
    with pytest.raises(LmlabError, match=r"holds 2 \(validation.csv, validation.jsonl\) validation file"):
        source.fingerprint()


def test_inferred_labels_are_sorted_over_every_split_whatever_the_row_order():
    import datasets

    from lmlab.data.classification import label_names_of

    train = datasets.Dataset.from_dict({"label": ["tech", "sports", "tech", "politics"]})
    validation = datasets.Dataset.from_dict({"label": ["volcano", "sports"]})  # a class only validation has
    assert label_names_of([train, validation], "label") == LABELS
    assert label_names_of([validation.shuffle(seed=1), train.shuffle(seed=2)], "label") == LABELS
    numbers = datasets.Dataset.from_dict({"label": [10, 2, 1, 2]})
    assert label_names_of([numbers], "label") == ["1", "2", "10"]  # numerically, not as strings


def test_more_epochs_from_the_final_last_ckpt_equal_an_uninterrupted_run(tmp_path, cache_dir):
    """`last.ckpt` written when training ends is a checkpoint to continue from: 2 epochs, then `resume=force` with
    `trainer.max_epochs=3`, ends with the parameters of 3 epochs in one go (constant LR: the same schedule)."""
    data = write_labelled_csvs(tmp_path / "data")
    overrides = [*TINY_BERT, f"data.source.path={data}", "scheduler=constant", "scheduler.num_warmup_steps=0",
                 "callbacks.export_hf=null"]
    train_in_process(tmp_path / "whole", cache_dir, [*overrides, "trainer.max_epochs=3"])
    train_in_process(tmp_path / "split", cache_dir, [*overrides, "trainer.max_epochs=2"])
    train_in_process(tmp_path / "split", cache_dir, [*overrides, "trainer.max_epochs=3", "resume=force"])
    whole, split = (torch.load(tmp_path / name / "run" / "checkpoints" / "last.ckpt", weights_only=False)
                    for name in ("whole", "split"))
    assert whole["global_step"] == split["global_step"] == 3 * (124 // 16)
    different = [k for k in whole["state_dict"] if not torch.equal(whole["state_dict"][k], split["state_dict"][k])]
    assert not different, different[:5]
