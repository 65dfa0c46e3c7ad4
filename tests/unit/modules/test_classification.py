"""Classification: metrics against hand computations, label mapping, pair inputs, init_from, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose, metric_series, run_cli, train_in_process

from lmlab.config import minilm_path
from lmlab.data.classification import ClassificationDataModule, encode_labels
from lmlab.data.classification_sources import LocalSplits
from lmlab.errors import LmlabError
from lmlab.modules.metrics import classification_metrics


def hand_metrics(preds: np.ndarray, target: np.ndarray, k: int) -> dict[str, float]:
    """Accuracy, macro F1 and Matthews correlation from the confusion matrix (sklearn's definitions)."""
    confusion = np.zeros((k, k))
    np.add.at(confusion, (target, preds), 1)
    tp = np.diag(confusion)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    n, correct = confusion.sum(), tp.sum()
    t, p = confusion.sum(1), confusion.sum(0)
    mcc = (correct * n - t @ p) / np.sqrt((n**2 - p @ p) * (n**2 - t @ t))
    return {"accuracy": correct / n, "f1_macro": f1.mean(), "mcc": mcc}


@pytest.mark.parametrize(("preds", "target", "k"), [
    ([1, 0, 1, 1, 0, 1, 0, 0, 1, 1], [1, 0, 0, 1, 0, 1, 1, 0, 1, 0], 2),
    ([0, 2, 1, 2, 2, 0, 1, 1, 0, 2, 3, 3], [0, 1, 1, 2, 2, 0, 2, 1, 0, 0, 3, 1], 4),
])
def test_metrics_equal_hand_computation(preds, target, k):
    got = classification_metrics(k, "val/")(torch.tensor(preds), torch.tensor(target))
    want = hand_metrics(np.array(preds), np.array(target), k)
    for name, value in want.items():
        assert float(got[f"val/{name}"]) == pytest.approx(value, abs=1e-6), name


def test_label_mapping_round_trip():
    labels = ["negative", "positive", "neutral"]
    values = ["neutral", "negative", "positive", "neutral"]
    ids = encode_labels(values, labels, None, "train", "label")
    id2label = dict(enumerate(labels))
    assert [id2label[i] for i in ids] == values
    assert encode_labels([2, 0, 1], labels, None, "train", "label") == [2, 0, 1]  # ids into the label set
    assert encode_labels([1, 0], ["pos", "neg"], ["neg", "pos"], "train", "label") == [0, 1]  # ClassLabel names


def write_tsv(directory: Path, rows: dict[str, list[tuple]], header: str = "sentence\tlabel") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        body = "\n".join("\t".join(map(str, line)) for line in lines)
        (directory / f"{split}.tsv").write_text(f"{header}\n{body}\n")
    return directory


def local_datamodule(path: Path, cache_dir: Path, **kwargs) -> ClassificationDataModule:
    source = LocalSplits(path=str(path), files={"train": "train.tsv", "validation": "dev.tsv"})
    options = {"text_column": "sentence", "labels": ["negative", "positive"], "tokenizer": minilm_path(),
               "cache_dir": str(cache_dir), **kwargs}
    return ClassificationDataModule(source, **options)


GOOD = [("a fine film", 1), ("dull and long", 0)]


@pytest.mark.parametrize(("rows", "kwargs", "message"), [
    ({"train": GOOD, "dev": GOOD}, {"label_column": "sentiment"}, "data.label_column='sentiment'"),
    ({"train": GOOD, "dev": [("odd", 5)]}, {}, "labels 5 not in the label set"),
    ({"train": GOOD, "dev": [("odd", "meh")]}, {}, "'meh'"),
    ({"train": GOOD, "dev": []}, {}, "validation split of data.source is empty"),
    ({"train": [(3, 1), (4, 0)], "dev": GOOD}, {}, "data.text_column='sentence' of the train split holds int64"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, rows, kwargs, message):
    datamodule = local_datamodule(write_tsv(tmp_path / "data", rows), tmp_path / "cache", **kwargs)
    with pytest.raises(LmlabError, match=message.replace("(", r"\(").replace("[", r"\[")):
        datamodule.module_kwargs()


def test_bad_label_through_the_cli_exits_nonzero(tmp_path):
    data = write_tsv(tmp_path / "sst2", {"train": GOOD, "dev": [("so so", "meh")]})
    result = run_cli(["task=classify", "data=sst2_local", f"data.source.path={data}", f"paths.output_dir={tmp_path}"],
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "error:" in result.stderr and "'meh'" in result.stderr and "data.label_column='label'" in result.stderr


def test_pair_inputs_are_tokenized_as_one_sequence(tmp_path):
    data = write_tsv(tmp_path / "data", {"train": [("a cat", "sits here", 1)], "dev": [("a dog", "runs", 0)]},
                     header="premise\thypothesis\tlabel")
    datamodule = local_datamodule(data, tmp_path / "cache", text_column="premise", text_pair_column="hypothesis")
    datamodule.module_kwargs()
    datamodule.setup()
    example = datamodule.datasets["train"][0]
    tokenizer = datamodule.tokenizer
    assert tokenizer.convert_ids_to_tokens(example["input_ids"]) == \
        ["[CLS]", "a", "cat", "[SEP]", "sits", "here", "[SEP]"]
    assert example["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert example["labels"] == 1


def fake_pretraining_run(run_dir: Path):
    """A run directory as lmlab leaves it after task=mlm: config.yaml, run.json and the hf/ export."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    model = BertForMaskedLM(config)
    model.save_pretrained(run_dir / "hf")
    tokenizer.save_pretrained(run_dir / "hf")
    (run_dir / "config.yaml").write_text("task:\n  module:\n    _target_: lmlab.modules.MaskedLMModule\n")
    (run_dir / "run.json").write_text(json.dumps({"command": "lmlab-train task=mlm"}))
    return model


def test_init_from_loads_the_pretrained_body_and_a_new_head(tmp_path):
    from lmlab.modules import SequenceClassificationModule

    pretrained = fake_pretraining_run(tmp_path / "mlm")
    module = SequenceClassificationModule(
        model={"init_from": str(tmp_path / "mlm"), "config": None},
        optimizer={"_target_": "torch.optim.AdamW", "lr": 1e-3}, labels=["a", "b", "c"], cache_dir=str(tmp_path))
    body, source = module.model.bert.state_dict(), pretrained.bert.state_dict()
    encoder_keys = [k for k in source if k.startswith(("embeddings.", "encoder."))]
    assert encoder_keys and all(torch.equal(body[k], source[k]) for k in encoder_keys)
    assert module.model.classifier.out_features == 3
    assert module.model.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_init_from_a_directory_that_is_no_run_is_an_error(tmp_path):
    from lmlab.checkpoint.init_from import resolve_init_from

    (tmp_path / "notarun").mkdir()
    with pytest.raises(LmlabError, match="notarun.*is not an lmlab run directory"):
        resolve_init_from(str(tmp_path / "notarun"), tmp_path)


def test_every_new_data_option_instantiates_its_source():
    from hydra.utils import instantiate

    expected = {"stdlib-functions": "StdlibFunctions", "sst2": "HubSplits", "imdb": "HubSplits",
                "sst2_local": "LocalSplits", "imdb_local": "LocalSplits"}
    for data, source_class in expected.items():
        cfg = compose(["task=classify", f"data={data}", "data.source.path=somewhere"] if "local" in data
                      else ["task=classify", f"data={data}"])
        assert type(instantiate(cfg.data.source)).__name__ == source_class


@pytest.mark.slow
def test_tiny_classification_run_learns(tmp_path, cache_dir):
    """A few dozen steps on the stdlib-functions task: the training loss falls; lmlab-eval scores the checkpoint."""
    overrides = ["task=classify", "data.max_documents=128", "data.vocab_size=512", "data.max_length=48",
                 "data.batch_size=16", "model.config.num_hidden_layers=1", "model.config.hidden_size=64",
                 "model.config.intermediate_size=128", "trainer.max_steps=24", "trainer.val_check_interval=12",
                 "trainer.log_every_n_steps=5", "scheduler.num_warmup_steps=2", "optimizer.lr=3e-3",
                 "callbacks.progress_bar=null", "callbacks.model_summary=null"]
    from omegaconf import OmegaConf

    from lmlab.evaluate import evaluate

    cfg, metric = train_in_process(tmp_path, cache_dir, overrides)
    run_dir = tmp_path / "run"
    losses = [v for _, v in metric_series(run_dir, "train/loss")]
    assert np.mean(losses[-2:]) < losses[0]

    metrics = evaluate(OmegaConf.create({"ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"), "split": "validation",
                                         "batch_size": None, "accelerator": "cpu", "output_dir": None}))
    predictions = [json.loads(line) for line in (run_dir / "eval" / "validation_predictions.jsonl").open()]
    assert len(predictions) == 128
    assert {p["label"] for p in predictions} <= set(cfg.data.source.packages)
    accuracy = np.mean([p["label"] == p["prediction"] for p in predictions])
    assert metrics["validation/accuracy"] == pytest.approx(accuracy)
    assert json.loads((run_dir / "eval" / "validation_metrics.json").read_text())["validation/accuracy"] == \
        pytest.approx(accuracy)
