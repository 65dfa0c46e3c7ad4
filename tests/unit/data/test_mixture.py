"""Weighted data mixtures: shares of the training order, and exact resume (killed, and on fewer processes)."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import TEST_CALLBACKS, compose, metric_series, run_cli
from record_batches import samples_by_step
from resume_helpers import ELASTIC, ONE, TWO, record

from lmlab.data.mixed_blocks import MixedBlocks, slot_counts
from lmlab.distributed import GlobalOrderSampler

Z_999 = 3.2905  # two-sided 99.9% normal quantile


def binomial_bound(n: int, p: float) -> float:
    return Z_999 * math.sqrt(n * p * (1 - p))


def test_slots_follow_the_weights_and_blocks_are_repeated_or_spread_evenly():
    assert slot_counts([0.75, 0.25], 100) == [75, 25]
    assert slot_counts([2, 1], 10) == [7, 3]
    assert slot_counts([1000, 1], 10) == [9, 1]  # every source at least once
    mixed = MixedBlocks([list(range(4)), list(range(100, 120))], [0.5, 0.5], 16)
    assert [mixed[i] for i in range(16)] == [0, 0, 1, 1, 2, 2, 3, 3, 100, 102, 105, 107, 110, 112, 115, 117]
    assert mixed.source_of(torch.arange(16)).tolist() == [0] * 8 + [1] * 8


@pytest.mark.parametrize("num_samples", [64, 400, 2000])
def test_each_sources_share_of_the_first_samples_lies_within_a_binomial_bound(num_samples):
    """A 0.75/0.25 mixture of sources of 600 and 200 blocks, in the order training reads it (seed 0, global batch
    8): over the first N samples each source's count is within the 99.9% binomial bound of its weight."""
    mixed = MixedBlocks([list(range(600)), list(range(200))], [0.75, 0.25], 800)
    sampler = GlobalOrderSampler(mixed, batch_size=8)
    first = torch.cat([sampler.step_samples(step) for step in range(num_samples // 8)])
    assert len(first) == num_samples
    counts = torch.bincount(mixed.source_of(first), minlength=2).tolist()
    for count, weight in zip(counts, (0.75, 0.25), strict=True):
        assert abs(count - num_samples * weight) <= binomial_bound(num_samples, weight), counts


def test_step_samples_are_what_the_ranks_iterate():
    mixed = MixedBlocks([list(range(50)), list(range(30))], [0.6, 0.4], 80)
    sampler = GlobalOrderSampler(mixed, batch_size=8)
    assert torch.cat([sampler.step_samples(s) for s in range(sampler.steps_per_epoch)]).tolist() == list(sampler)


def write_text_corpus(directory: Path) -> str:
    """Three files of made-up prose (unlike the stdlib's code): the mixture's second source."""
    words = ["the", "a", "river", "stone", "light", "under", "over", "quietly", "morning", "falls", "green", "old",
             "city", "wind", "returns"]
    rng = random.Random(0)
    directory.mkdir()
    for i in range(3):
        lines = (" ".join(rng.choice(words) for _ in range(12)) + ".\n" for _ in range(60))
        (directory / f"text-{i}.txt").write_text("".join(lines))
    return str(directory / "*.txt")


MIXTURE = ["data=mixture", "data.sources.code.weight=0.75", "data.sources.text.weight=0.25"]


@pytest.mark.slow
def test_mixture_resumes_at_the_same_samples_after_sigkill_and_on_fewer_processes(tmp_path, cache_dir):
    """12 steps of a 0.75/0.25 mixture (stdlib code, made-up prose): the uninterrupted run's samples are those a
    run SIGKILLed after step 6 and relaunched trains on, and those of a run started on 2 processes and resumed
    on 1; `data/tokens/<source>` and summary.json count exactly the recorded samples of each source."""
    mixture = [*MIXTURE, f"data.sources.text.source.train={write_text_corpus(tmp_path / 'text')}"]

    def train(name: str, before: list[str], after: list[str] | None = None) -> Path:
        run_dir = tmp_path / name
        common = [f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
        kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=6"]
        for args, status in ([(before, 0)] if after is None else [(before + kill, -9), (after, 0)]):
            # the kill callback before the recorder: the killed step's batch is not recorded
            result = run_cli([*ELASTIC, *mixture, *args, *record(run_dir), *common], cwd=tmp_path, env=TEST_CALLBACKS)
            assert result.returncode == status, result.stderr[-3000:]
        return run_dir

    reference = train("reference", ONE)
    expected = samples_by_step(reference / "batches")
    assert sorted(expected) == list(range(12))
    for run_dir in (train("killed", ONE, ONE), train("elastic", TWO, ONE)):
        assert samples_by_step(run_dir / "batches", after=5) == {s: r for s, r in expected.items() if s > 5}
        assert json.loads((run_dir / "summary.json").read_text())["data_tokens"] == json.loads(
            (reference / "summary.json").read_text())["data_tokens"]

    # every recorded sample traced to its source by its tokens: the logged counts are those samples'
    cfg = compose([*ELASTIC, *mixture, f"paths.cache_dir={cache_dir}"])
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.setup()
    source_of_row = {}
    for source, blocks in enumerate(datamodule.datasets["train"].sources):
        for i in range(len(blocks)):
            source_of_row[hashlib.sha1(blocks[i]["input_ids"].numpy().tobytes()).hexdigest()[:12]] = source
    rows = [source_of_row[row] for rows in expected.values() for row in rows]
    block_size = int(cfg.data.block_size)
    counted = {"code": rows.count(0) * block_size, "text": rows.count(1) * block_size}
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["data_tokens"] == counted
    assert summary["data_shares"]["code"] == pytest.approx(counted["code"] / sum(counted.values()), abs=1e-6)
    assert abs(rows.count(0) - 0.75 * len(rows)) <= binomial_bound(len(rows), 0.75)
    # the last logged count: the text samples of the steps up to it (metrics.csv's step is the one logged in)
    step, logged = metric_series(reference, "data/tokens/text")[-1]
    text_rows = [source_of_row[row] for s, rows in expected.items() if s <= step for row in rows].count(1)
    assert logged == text_rows * block_size


def mixture_of(text_glob: str, cache: Path, block_size: int = 128):
    from lmlab.data import MixtureDataModule, TextFiles

    sources = {name: {"weight": weight, "source": TextFiles(train=text_glob)} for name, weight in
               (("code", 0.75), ("text", 0.25))}
    return MixtureDataModule(sources=sources, vocab_size=300, block_size=block_size, batch_size=4,
                             cache_dir=str(cache))


def test_a_mixture_of_three_small_files_holds_out_the_last_lines_of_every_file(tmp_path):
    """The issue's case: 3 files of about 50 KB, 5% held out. Whole files by path hash gave validation none."""
    from lmlab.data import TextFiles

    directory = tmp_path / "text"
    directory.mkdir()
    rng = random.Random(1)
    for i in range(3):
        lines = (f"{i} {' '.join(rng.choices(['river', 'stone', 'light'], k=10))}.\n" for _ in range(700))
        (directory / f"notes-{i}.txt").write_text("".join(lines))
    source = TextFiles(train=str(directory / "*.txt"))
    validation = ["".join(d) for d in source.documents("validation")]
    train = ["".join(d) for d in source.documents("train")]
    assert len(validation) == 3 and all(v.count("\n") == 35 for v in validation)  # 5% of each file's 700 lines
    whole = [p.read_text() for p in sorted(directory.iterdir())]
    assert [t + v for t, v in zip(train, validation, strict=True)] == whole
    data = mixture_of(str(directory / "*.txt"), tmp_path / "cache")
    data.prepare_data()
    data.setup()
    assert len(data.datasets["validation"]) > 0


def test_a_validation_split_shorter_than_a_block_names_the_keys_that_fix_it(tmp_path):
    from lmlab.errors import LmlabError

    (tmp_path / "short.txt").write_text("".join(f"line {i} of a short file.\n" for i in range(100)))
    with pytest.raises(LmlabError) as error:
        mixture_of(str(tmp_path / "short.txt"), tmp_path / "cache").prepare_data()
    message = str(error.value)
    assert message.startswith("the code validation split has ") and "fewer than data.block_size=128" in message
    assert "raise data.sources.code.source.validation_fraction (now 0.05)" in message
    assert "data.sources.code.source.validation='<glob>'" in message and "lower data.block_size to " in message
