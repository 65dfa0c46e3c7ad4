"""`debug=fast` runs every task on every data option that needs no network, and cuts every data module.

The cases are checked against conf/: a new task or data option fails here until it is given a case (or
listed as a base config or as needing the hub).
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import train_in_process
from hydra.utils import get_class, instantiate
from labelled_data import write_labelled_csvs

from lmlab.config import config_dir

pytestmark = pytest.mark.slow

FAST_CUT = 200  # conf/debug/fast.yaml: data.max_documents
# Data options that read the Hugging Face hub or object storage, and base configs a data set config starts from.
NEEDS_NETWORK = {"alpaca", "hub", "imdb", "sst2", "wikitext2", "wikitext103", "remote", "ultrafeedback", "hh_rlhf"}
BASES = {"classification", "sft", "preference"}
CASES = {  # data option → the tasks it serves
    "stdlib": ["clm", "mlm"], "files": ["clm", "mlm"], "mixture": ["clm"],
    "stdlib-functions": ["classify"], "local": ["classify"], "sst2_local": ["classify"],
    "imdb_local": ["classify"],
    "synthetic_instructions": ["sft"], "sft_local": ["sft"],
    "synthetic_preferences": ["dpo", "reward"], "preference_local": ["dpo"],
}
GPT2 = ["model.config.n_layer=1", "model.config.n_embd=64", "model.config.n_head=2"]
BERT = ["model.config.num_hidden_layers=1", "model.config.hidden_size=64", "model.config.num_attention_heads=2",
        "model.config.intermediate_size=128"]
MODEL = {"clm": [*GPT2, "callbacks.samples=null"], "sft": [*GPT2, "data.generation_examples=2"],
         "mlm": BERT, "classify": BERT, "dpo": [*GPT2, "data.generation_examples=2"], "reward": GPT2}
SHORT = ["trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
         "data.vocab_size=300", "data.batch_size=4", "data.eval_batch_size=4", "callbacks.model_summary=null",
         "trainer.enable_progress_bar=false"]  # honoured alone: lmlab adds no progress callback then


def options(group: str) -> set[str]:
    return {path.stem for path in (config_dir() / group).glob("*.yaml")}


def test_every_task_and_offline_data_option_has_a_case():
    assert {task for tasks in CASES.values() for task in tasks} == options("task")
    assert set(CASES) | NEEDS_NETWORK | BASES == options("data")


def local_data(option: str, directory) -> list[str]:
    """Files for the options that read local data, and the overrides that point at them."""
    directory.mkdir()
    if option == "stdlib-functions":
        return ["data.source.packages=[asyncio,tkinter]"]  # still more than the cut
    if option in ("files", "mixture"):
        (directory / "corpus.txt").write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(300)))
        key = "data.source" if option == "files" else "data.sources.text.source"
        return [f"{key}.train={directory / 'corpus.txt'}", f"{key}.validation_fraction=0.2"]
    if option == "local":
        write_labelled_csvs(directory)
        return [f"data.source.path={directory}"]
    if option == "sst2_local":
        for split, n in (("train", 60), ("dev", 20)):
            rows = [f"{'good fun' if i % 2 else 'dull mess'} {i}\t{i % 2}" for i in range(n)]
            (directory / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
        return [f"data.source.path={directory}"]
    if option == "imdb_local":
        import datasets

        for split, n in (("train", 60), ("test", 20)):
            texts = [f"{'great' if i % 2 else 'awful'} film number {i}" for i in range(n)]
            labels = ["pos" if i % 2 else "neg" for i in range(n)]
            datasets.Dataset.from_dict({"text": texts, "label": labels}).to_parquet(directory / f"{split}.parquet")
        return [f"data.source.path={directory}"]
    if option == "preference_local":
        for split, n in (("train", 60), ("validation", 10)):
            rows = [json.dumps({"prompt": f"upper ab{i}", "chosen": f"AB{i}", "rejected": f"ab{i}"}) for i in range(n)]
            (directory / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
        return [f"data.source.path={directory}"]
    if option == "sft_local":
        for split, n in (("train", 60), ("validation", 10)):
            rows = [json.dumps({"prompt": f"upper ab{i}", "response": f"AB{i}"}) for i in range(n)]
            (directory / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
        return [f"data.source.path={directory}"]
    return []


def train_split_size(datamodule) -> int:
    """Documents (pretraining: of the first source, for a mixture) or examples of the training split."""
    from lmlab.data import MixtureDataModule, PretrainDataModule
    from lmlab.data.preference import PreferenceDataModule

    if isinstance(datamodule, MixtureDataModule):
        return sum(1 for _ in datamodule.documents("train", datamodule.source.sources["code"]))
    if isinstance(datamodule, PretrainDataModule):
        return sum(1 for _ in datamodule.documents("train"))
    if isinstance(datamodule, PreferenceDataModule):
        return len(datamodule.pairs("train"))
    return len(datamodule.raw("train"))


@pytest.mark.parametrize(("task", "data"), [(task, data) for data, tasks in CASES.items() for task in tasks])
def test_debug_fast_trains_every_task_on_its_offline_data(task, data, tmp_path, cache_dir):
    overrides = [f"task={task}", f"data={data}", "debug=fast", *local_data(data, tmp_path / "data"), *MODEL[task],
                 *SHORT]
    cfg, metric = train_in_process(tmp_path, cache_dir, overrides)
    assert metric is not None and math.isfinite(metric)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()

    datamodule = instantiate(cfg.data)
    size = train_split_size(datamodule)
    full = train_split_size(instantiate(cfg.data, max_documents=None))
    assert size == min(FAST_CUT, full), (size, full)

    # lmlab.contracts: the data module's batches hold what the task module's steps read
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert set(get_class(cfg.task.module._target_).batch_keys) <= set(batch), (sorted(batch), cfg.task.module)
