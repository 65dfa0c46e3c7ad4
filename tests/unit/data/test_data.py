"""Packing, caching and sources of the pretraining data module."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.data import PretrainDataModule, StdlibCorpus, TextFiles
from lmlab.data.cache import cached_dir
from lmlab.data.packing import PackedBlocks, read_token_stream, write_token_stream
from lmlab.data.tokenizer import train_bpe
from lmlab.errors import LmlabError

DOCS = [f"def function_{i}(x):\n    return x * {i} + {i * i}\n" * (1 + i % 4) for i in range(40)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(DOCS, vocab_size=300)


def encode_docs(tokenizer, docs):
    """The expected stream, encoded one document at a time: ids of each document, then EOS."""
    stream = []
    for doc in docs:
        stream += tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return stream


def test_packing_preserves_every_token_in_order_across_blocks(tokenizer, tmp_path):
    meta = write_token_stream(DOCS, tokenizer, tmp_path, block_size=16, batch_chars=300)
    expected = encode_docs(tokenizer, DOCS)
    blocks = PackedBlocks(tmp_path)

    assert meta["num_tokens"] == len(expected)
    assert len(blocks) == len(expected) // 16
    packed = np.concatenate([blocks[i]["input_ids"].numpy() for i in range(len(blocks))])
    assert packed.tolist() == expected[: len(blocks) * 16]  # only the final partial block is left out
    assert len(expected) - len(packed) < 16


def test_packing_loses_no_tokens_between_tokenizer_batches(tokenizer, tmp_path):
    block_size = 16
    by_batch = {}
    for batch_chars in (1, 100, 300, 1 << 22):  # one document per batch ... all in one batch
        out = tmp_path / f"b{batch_chars}"
        out.mkdir()
        write_token_stream(DOCS, tokenizer, out, block_size=block_size, batch_chars=batch_chars)
        by_batch[batch_chars] = read_token_stream(out)
    assert all(np.array_equal(by_batch[1], stream) for stream in by_batch.values())

    # run_clm.py's group_texts packs each tokenizer batch on its own and drops every batch's remainder.
    expected = encode_docs(tokenizer, DOCS)
    per_batch_kept = sum(len(encode_docs(tokenizer, DOCS[i : i + 3])) // block_size * block_size
                         for i in range(0, len(DOCS), 3))
    assert len(PackedBlocks(tmp_path / "b100")) * block_size > per_batch_kept
    assert len(PackedBlocks(tmp_path / "b100")) == len(expected) // block_size


def make_datamodule(tmp_path, corpus, **kwargs) -> PretrainDataModule:
    defaults = dict(source=TextFiles(train=str(corpus)), vocab_size=300, block_size=32, batch_size=4,
                    cache_dir=str(tmp_path / "cache"))
    return PretrainDataModule(**{**defaults, **kwargs})


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(DOCS))
    return path


def test_cache_fingerprint_changes_with_tokenizer_and_block_size_only(tmp_path, corpus):
    base = make_datamodule(tmp_path, corpus)
    keys = {split: base.split_key(split) for split in ("train", "validation")}

    assert make_datamodule(tmp_path, corpus).split_key("train") == keys["train"]
    assert make_datamodule(tmp_path, corpus, batch_size=8, num_workers=1).split_key("train") == keys["train"]
    assert make_datamodule(tmp_path, corpus, block_size=64).split_key("train") != keys["train"]
    assert make_datamodule(tmp_path, corpus, vocab_size=280).split_key("train") != keys["train"]
    assert keys["train"] != keys["validation"]


def test_second_datamodule_reuses_the_cache(tmp_path, corpus, caplog):
    first = make_datamodule(tmp_path, corpus)
    first.prepare_data()
    first.setup()
    caplog.clear()
    from lmlab.data.cache import new_launch

    new_launch()  # as the next run of a sweep in this process: its reuse is said once
    with caplog.at_level("INFO"):
        second = make_datamodule(tmp_path, corpus)
        second.prepare_data()
        second.setup()
    assert "Reusing cached tokenized train split" in caplog.text
    assert "Building" not in caplog.text
    assert len(second.datasets["train"]) == len(first.datasets["train"]) > 0
    assert second.datasets["train"][0]["input_ids"].tolist() == first.datasets["train"][0]["input_ids"].tolist()


def test_cached_dir_builds_once(tmp_path):
    calls = []

    def build(tmp):
        calls.append(tmp)
        (tmp / "x").write_text("payload")

    first = cached_dir(tmp_path, "key", build, "thing")
    second = cached_dir(tmp_path, "key", build, "thing")
    assert first == second and (first / "x").read_text() == "payload"
    assert len(calls) == 1


def test_failed_build_leaves_no_entry(tmp_path):
    def build(tmp):
        (tmp / "partial").write_text("half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cached_dir(tmp_path, "key", build, "thing")
    assert not (tmp_path / "key").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_data_path_is_a_one_line_error_naming_it(tmp_path):
    with pytest.raises(LmlabError, match=r"data\.source\.train='/no/such/dir/\*\.txt' matches no files"):
        TextFiles(train="/no/such/dir/*.txt").fingerprint()


def test_stdlib_split_is_deterministic_and_disjoint_by_file():
    corpus = StdlibCorpus()
    train, validation = corpus.files("train"), corpus.files("validation")
    assert len(train) > 500 and len(validation) > 20
    assert not set(train) & set(validation)
    assert StdlibCorpus().files("validation") == validation
    assert StdlibCorpus().fingerprint() == corpus.fingerprint()


def test_single_file_is_split_by_lines(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    source = TextFiles(train=str(path), validation_fraction=0.1)
    train, validation = ("".join(next(source.documents(split))) for split in ("train", "validation"))
    assert train + validation == path.read_text()
    assert validation.splitlines()[0] == "line 90"


@pytest.mark.parametrize("ending", ["\n", "", "\r\n"])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_single_file_split_from_its_bytes_equals_text_mode_lines(tmp_path, ending, chunk):
    """The split found by counting b"\\n" (one binary pass) and the text decoded from byte offsets are what
    reading the file's lines in text mode gives: multi-byte characters and "\\r\\n" across chunk edges too."""
    from lmlab.data.sources import _decoded_chunks, _last_lines_offset

    lines = [f"línea {i} ✓ {'x' * (i % 13)}" for i in range(97)]
    path = tmp_path / "one.txt"
    path.write_bytes(("\r\n" if ending == "\r\n" else "\n").join(lines).encode() + ending.encode())
    with open(path, encoding="utf-8") as f:
        text_lines = f.readlines()
    for fraction in (0.05, 0.5, 0.99):
        keep = len(text_lines) - max(1, int(len(text_lines) * fraction))
        cut = _last_lines_offset(path, fraction, chunk_bytes=chunk)
        train = "".join(_decoded_chunks(path, "utf-8", "strict", 0, cut, chunk_bytes=chunk))
        validation = "".join(_decoded_chunks(path, "utf-8", "strict", cut, None, chunk_bytes=chunk))
        assert train == "".join(text_lines[:keep]) and validation == "".join(text_lines[keep:])


def test_single_utf16_file_is_split_by_lines_too(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("".join(f"line {i}\n" for i in range(20)), encoding="utf-16")
    source = TextFiles(train=str(path), validation_fraction=0.1, encoding="utf-16")
    train, validation = ("".join(next(source.documents(split))) for split in ("train", "validation"))
    assert train + validation == path.read_text(encoding="utf-16") and validation == "line 18\nline 19\n"
