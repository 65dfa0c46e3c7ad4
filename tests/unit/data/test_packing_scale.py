"""Tokenize-and-pack at scale: long documents cut at lines, several processes, shards, streaming sources,
an interrupted cache build. Small inputs, forced into the large-corpus code paths by small batch and shard sizes."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from lmlab.data import HubDataset, PretrainDataModule, StdlibCorpus, TextFiles
from lmlab.data.packing import PackedBlocks, batches_of_text, read_token_stream, write_token_stream
from lmlab.data.progress import DataProgress
from lmlab.data.tokenizer import train_bpe
from lmlab.errors import LmlabError


@pytest.fixture(scope="module")
def stdlib_docs() -> list[str]:
    return list(StdlibCorpus().documents("train"))[:80]


@pytest.fixture(scope="module")
def tokenizer(stdlib_docs):
    return train_bpe(stdlib_docs[:40], vocab_size=512)


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids


def test_a_long_single_document_tokenizes_to_exactly_the_ids_of_encoding_it_whole(tokenizer, stdlib_docs, tmp_path):
    document = "".join(stdlib_docs[:30])  # one document of ~250k characters of code
    expected = [*ids_of(tokenizer, document), tokenizer.eos_token_id]
    batches = list(batches_of_text([document], chars=16_000))
    assert sum(len(texts) for texts, _ in batches) > 50  # it was cut, into pieces of at most ~1k characters
    assert [end for _, ends in batches for end in ends].count(True) == 1  # still one document: one EOS

    whole, streamed = tmp_path / "whole", tmp_path / "streamed"
    whole.mkdir(), streamed.mkdir()
    write_token_stream([document], tokenizer, whole, block_size=16, batch_chars=16_000, num_proc=1)
    # the same document read as a stream of chunks cut anywhere (how a big single file arrives)
    chunks = (document[i : i + 777] for i in range(0, len(document), 777))
    write_token_stream([chunks], tokenizer, streamed, block_size=16, batch_chars=16_000, num_proc=1)
    assert read_token_stream(whole).tolist() == expected
    assert read_token_stream(streamed).tolist() == expected


def test_num_proc_2_writes_a_byte_identical_token_stream_to_num_proc_1(tokenizer, stdlib_docs, tmp_path):
    assert len(list(batches_of_text(stdlib_docs, chars=64_000))) >= 4  # enough batches to go to the workers
    files = {}
    for num_proc in (1, 2):
        out = tmp_path / f"p{num_proc}"
        out.mkdir()
        meta = write_token_stream(stdlib_docs, tokenizer, out, block_size=32, batch_chars=64_000, num_proc=num_proc,
                                  shard_bytes=100_000)
        assert len(meta["shards"]) > 1
        files[num_proc] = {shard["file"]: (out / shard["file"]).read_bytes() for shard in meta["shards"]}
    assert files[2] == files[1]
    expected = [i for doc in stdlib_docs for i in [*ids_of(tokenizer, doc), tokenizer.eos_token_id]]
    assert np.concatenate([np.frombuffer(b, np.uint16) for b in files[1].values()]).tolist() == expected


def test_encoding_workers_end_on_the_pools_sigterm_whatever_their_parent_does_with_it(tokenizer):
    """Under SLURM submitit's handler ignores SIGTERM; a worker inheriting it would outlive the pool's exit."""
    import multiprocessing
    import signal

    from lmlab.data.encode_pool import _init_worker

    previous = signal.signal(signal.SIGTERM, lambda *args: None)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(1, _init_worker, (tokenizer.backend_tokenizer.to_str(), "uint16", 0)) as pool:
            assert pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_multi_shard_corpus_serves_the_same_blocks_as_one_shard(tokenizer, stdlib_docs, tmp_path):
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir(), many.mkdir()
    write_token_stream(stdlib_docs[:30], tokenizer, one, block_size=24, num_proc=1)
    meta = write_token_stream(stdlib_docs[:30], tokenizer, many, block_size=24, num_proc=1, shard_bytes=5_000)
    assert len(meta["shards"]) > 10
    assert all(s["num_tokens"] % 24 == 0 for s in meta["shards"][:-1])  # no block spans two files
    single, sharded = PackedBlocks(one), PackedBlocks(many)
    assert len(single.shards) == 1 and len(sharded) == len(single) > 100
    for i in range(len(single)):
        assert sharded[i]["input_ids"].tolist() == single[i]["input_ids"].tolist(), i
    with pytest.raises(IndexError):
        sharded[len(single)]


def test_a_streaming_datasets_source_packs_the_same_tokens_as_the_materialised_one(tokenizer, stdlib_docs, tmp_path):
    files = {}
    for split, docs in (("train", stdlib_docs[:20]), ("validation", stdlib_docs[20:24])):
        files[split] = str(tmp_path / f"{split}.txt")
        (tmp_path / f"{split}.txt").write_text("".join(docs))
    streams, fingerprints = {}, {}
    for streaming in (False, True):
        source = HubDataset(path="text", data_files=files, streaming=streaming)
        fingerprints[streaming] = source.fingerprint()
        for split in ("train", "validation"):
            out = tmp_path / f"{split}-{streaming}"
            out.mkdir()
            write_token_stream(source.documents(split), tokenizer, out, block_size=16, num_proc=1)
            streams[split, streaming] = read_token_stream(out).tolist()
    assert streams["train", True] == streams["train", False] and len(streams["train", True]) > 10_000
    assert streams["validation", True] == streams["validation", False]
    assert HubDataset(path="text", data_files=files, streaming=True).fingerprint() == fingerprints[True]
    as_config_node = OmegaConf.create(files)  # as Hydra passes it
    assert HubDataset(path="text", data_files=as_config_node, streaming=True).fingerprint() == fingerprints[True]
    (tmp_path / "train.txt").write_text("changed\n")
    assert HubDataset(path="text", data_files=files, streaming=True).fingerprint() != fingerprints[True]


KILLED_BUILD = """
import os, signal, sys
from lmlab.data import PretrainDataModule, TextFiles
dm = PretrainDataModule(source=TextFiles(train=sys.argv[1]), tokenizer=sys.argv[2], block_size=16,
                        cache_dir=sys.argv[3], num_proc=1)
documents = dm.documents
def dying(split, source=None):
    for i, doc in enumerate(documents(split, source)):
        if i == 5:
            os.kill(os.getpid(), signal.SIGKILL)  # killed half way through tokenizing the train split
        yield doc
dm.documents = dying
dm.prepare_data()
"""


def test_a_cache_build_killed_half_way_leaves_no_entry_and_is_rebuilt(tokenizer, stdlib_docs, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, doc in enumerate(stdlib_docs[:40]):
        (corpus / f"{i:02d}.txt").write_text(doc)
    tokenizer.save_pretrained(tmp_path / "tok")
    cache = tmp_path / "cache"
    args = [str(corpus / "*.txt"), str(tmp_path / "tok"), str(cache)]
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, *args], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr

    datamodule = PretrainDataModule(source=TextFiles(train=args[0]), tokenizer=args[1], block_size=16,
                                    cache_dir=args[2], num_proc=1)
    key = datamodule.split_key("train")
    leftovers = list((cache / "packed").glob(f"{key}*"))
    assert not (cache / "packed" / key).exists()  # nothing under the entry's name
    assert [p.name for p in leftovers if not p.name.endswith(".lock")] != []  # its temp dir was left behind

    datamodule.prepare_data()
    datamodule.setup()
    names = sorted(p.name for p in (cache / "packed").iterdir() if not p.name.endswith(".lock"))
    assert key in names and not any(".tmp-" in n for n in names)  # rebuilt, the interrupted build cleared
    docs = list(TextFiles(train=args[0]).documents("train"))
    expected = [i for doc in docs for i in [*ids_of(datamodule.tokenizer, doc), datamodule.tokenizer.eos_token_id]]
    assert read_token_stream(cache / "packed" / key).tolist() == expected


def test_progress_without_a_terminal_logs_rate_and_eta_lines(caplog):
    with caplog.at_level(logging.INFO), DataProgress("Tokenizing train", total_chars=1000, interval=0,
                                                     live=False) as progress:
        progress.advance(250, 100)
        progress.advance(250, 100)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Tokenizing train")]
    assert len(lines) == 2
    assert "200 tokens" in lines[1] and "tokens/s" in lines[1] and "50% of ~1.0k characters" in lines[1]
    assert "ETA 0:00:0" in lines[1]


def test_a_file_over_the_stream_size_is_read_in_chunks_with_the_same_tokens(tokenizer, stdlib_docs, tmp_path,
                                                                            monkeypatch):
    for i, doc in enumerate(stdlib_docs[:6]):
        (tmp_path / f"{i}.txt").write_text(doc)
    source = TextFiles(train=str(tmp_path / "*.txt"), validation=str(tmp_path / "5.txt"))
    whole = list(source.documents("train"))
    monkeypatch.setattr("lmlab.data.sources.STREAM_BYTES", 1000)
    streamed = list(source.documents("train"))
    assert all(isinstance(d, str) for d in whole) and sum(not isinstance(d, str) for d in streamed) >= 3
    outs = []
    for name, documents in (("whole", whole), ("streamed", streamed)):
        outs.append(tmp_path / name)
        outs[-1].mkdir()
        write_token_stream(documents, tokenizer, outs[-1], block_size=16, batch_chars=16_000, num_proc=1)
    assert read_token_stream(outs[1]).tolist() == read_token_stream(outs[0]).tolist()


@pytest.mark.parametrize("key, value", [("num_proc", 0), ("shard_bytes", 0)])
def test_a_bad_num_proc_or_shard_size_is_a_one_line_error(key, value, tmp_path):
    with pytest.raises(LmlabError, match=rf"data\.{key}={value} must be"):
        PretrainDataModule(source=TextFiles(train=str(tmp_path / "*.txt")), **{key: value})
