"""data=preference: every row shape gives the same pairs, truncation keeps the prompt's end and the responses'
start, pairs with chosen equal to rejected are dropped with a count (all of them: an error)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from lmlab.contracts import IGNORE_INDEX
from lmlab.data import PreferenceDataModule, SyntheticPreferences
from lmlab.data.classification_sources import LocalSplits
from lmlab.data.synthetic_instructions import TRANSFORMS
from lmlab.errors import LmlabError

PROMPT = [{"role": "user", "content": "upper abc"}]
CHOSEN, REJECTED = [{"role": "assistant", "content": "ABC"}], [{"role": "assistant", "content": "cba"}]
SHAPES = {  # the same pair, as each shape a data set writes it
    "strings": {"prompt": "upper abc", "chosen": "ABC", "rejected": "cba"},
    "messages": {"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED},
    "ultrafeedback": {"chosen": PROMPT + CHOSEN, "rejected": PROMPT + REJECTED, "score_chosen": 9.0},
    "hh_rlhf": {"chosen": "\n\nHuman: upper abc\n\nAssistant: ABC",
                "rejected": "\n\nHuman: upper abc\n\nAssistant: cba"},
}


def write_splits(directory: Path, rows: list[dict]) -> LocalSplits:
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation"):
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return LocalSplits(str(directory), {"train": "train.jsonl", "validation": "validation.jsonl"})


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    datamodule = PreferenceDataModule(SyntheticPreferences(train_examples=20, validation_examples=4), vocab_size=261,
                                      cache_dir=str(tmp_path_factory.mktemp("cache")))
    directory = tmp_path_factory.mktemp("tokenizer")
    datamodule.tokenizer.save_pretrained(directory)
    return str(directory)


def datamodule(source, tokenizer_dir: str, tmp_path: Path, **kwargs) -> PreferenceDataModule:
    return PreferenceDataModule(source, tokenizer=tokenizer_dir, cache_dir=str(tmp_path / "cache"), **kwargs)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_gives_the_same_pair(shape, tmp_path, tokenizer_dir):
    prompt_column = "prompt" if "prompt" in SHAPES[shape] else None
    data = datamodule(write_splits(tmp_path / shape, [SHAPES[shape]]), tokenizer_dir, tmp_path,
                      prompt_column=prompt_column)
    assert data.pairs("train") == [(PROMPT, CHOSEN, REJECTED, None)]
    rows = data.encode("train")
    tokenizer = data.tokenizer
    assert tokenizer.decode(rows["chosen_ids"][0]) == "ABC</s>"
    assert tokenizer.decode(rows["rejected_ids"][0]) == "cba</s>"
    assert tokenizer.decode(rows["prompt_ids"][0]).endswith("upper abc<|end|><|assistant|>")
    assert data.generation_examples() == [(PROMPT, "ABC")]


def test_batch_layout_truncation_and_dropped_pairs(tmp_path, tokenizer_dir, caplog):
    """Chosen rows then rejected rows, labels on responses only; a long pair keeps its prompt's end and its
    responses' start; a pair whose chosen equals rejected is dropped with a count, all of them is an error."""
    long_prompt = "upper " + "x" * 40 + "END"
    rows = [{"prompt": long_prompt, "chosen": "Y" * 30, "rejected": "Z" * 30},
            {"prompt": "upper ab", "chosen": "AB", "rejected": "AB"},
            {"prompt": "upper ab", "chosen": "AB", "rejected": "ab"}]
    data = datamodule(write_splits(tmp_path / "d", rows), tokenizer_dir, tmp_path, max_length=32, max_prompt_length=12)
    with caplog.at_level(logging.WARNING):
        encoded = data.encode("train")
    assert "1 of 3 train pairs have chosen equal to rejected" in caplog.text
    decode = data.tokenizer.decode
    assert len(encoded["prompt_ids"][0]) == 12 and decode(encoded["prompt_ids"][0]).endswith("xEND<|end|><|assistant|>")
    assert decode(encoded["chosen_ids"][0]) == "Y" * 20 and decode(encoded["rejected_ids"][0]) == "Z" * 20

    batch = data.collator()([{k: v[i] for k, v in encoded.items()} for i in range(2)])
    assert batch["input_ids"].shape == (4, 32)
    labels, ids = batch["labels"], batch["input_ids"]
    assert decode(ids[1][labels[1] != IGNORE_INDEX]) == "AB</s>"  # pair 2's chosen
    assert decode(ids[3][labels[3] != IGNORE_INDEX]) == "ab</s>"  # pair 2's rejected
    assert batch["attention_mask"][1].sum() == len(encoded["prompt_ids"][1]) + len(encoded["chosen_ids"][1])

    same = datamodule(write_splits(tmp_path / "same", rows[1:2]), tokenizer_dir, tmp_path)
    with pytest.raises(LmlabError, match="every pair of the train split of data.source has chosen equal to rejected"):
        same.encode("train")
    missing = datamodule(write_splits(tmp_path / "missing", [{"prompt": "a", "better": "b", "rejected": "c"}]),
                         tokenizer_dir, tmp_path)
    with pytest.raises(LmlabError, match=r"no column data.chosen_column='chosen'; its columns: \['prompt', 'better'"):
        missing.encode("train")


def test_synthetic_preferences_reject_a_plausible_wrong_answer():
    source = SyntheticPreferences(train_examples=300, validation_examples=50)
    for split in ("train", "validation"):
        rows = source.load(split)
        for prompt, chosen, rejected in zip(rows["prompt"], rows["chosen"], rows["rejected"], strict=True):
            task, letters = prompt.split()
            assert chosen == TRANSFORMS[task](letters) and rejected != chosen and rejected
    assert source.load("train")["rejected"] == source.load("train")["rejected"]  # deterministic
    assert source.fingerprint() != SyntheticPreferences(train_examples=300, validation_examples=50,
                                                        seed=1).fingerprint()


def test_a_tokenizer_that_is_not_the_init_from_models_is_one_line_before_training(tmp_path, tokenizer_dir):
    """The policy and its reference are init_from's model: data.tokenizer naming another vocabulary is refused."""
    from conftest import run_cli
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    policy = tmp_path / "policy"  # a Hugging Face model directory with its own tokenizer
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=16)).save_pretrained(policy)
    tokenizer.save_pretrained(policy)
    other = tmp_path / "other"  # another byte-level BPE, of another size
    PreferenceDataModule(SyntheticPreferences(train_examples=20, validation_examples=4), vocab_size=300,
                         cache_dir=str(tmp_path / "cache")).tokenizer.save_pretrained(other)
    same = PreferenceDataModule(SyntheticPreferences(), tokenizer=str(policy), init_from=str(policy),
                                cache_dir=str(tmp_path / "cache"))
    assert same.tokenizer.get_vocab() == tokenizer.get_vocab()  # the same one named twice is fine

    root = tmp_path / "root"
    root.mkdir()
    result = run_cli(["task=dpo", "debug=fast", f"model.init_from={policy}", f"model.tokenizer={other}",
                      f"paths.root_dir={root}", f"paths.cache_dir={tmp_path / 'cache'}"], cwd=root)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: data.tokenizer='{other}' is not the tokenizer of model.init_from="), lines[-3:]
    assert f"({len(AutoTokenizer.from_pretrained(other))} vs {len(tokenizer)} tokens)" in lines[-1]
    assert "Traceback" not in result.stderr
    assert not any(root.rglob("*.csv")) and not any(root.rglob("config.yaml"))  # nothing written
