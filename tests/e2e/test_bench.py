"""The benchmark scripts keep working (`--quick`): they produce their figures, on identical data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT


def run_bench(script: str, tmp_path, cache_dir) -> dict:
    out = tmp_path / f"{script}.json"
    proc = subprocess.run([sys.executable, f"bench/{script}.py", "--quick", "--cache-dir", str(cache_dir),
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert json.loads(out.read_text())["readme_line"] in proc.stdout
    return json.loads(out.read_text())


@pytest.mark.slow
def test_train_throughput_quick_trains_all_variants_on_the_same_batches(tmp_path, cache_dir):
    summary = run_bench("train_throughput", tmp_path, cache_dir)
    first = {v: rounds[0] for v, rounds in summary["results"].items()}
    assert set(first) == {"lmlab", "raw", "hf"}
    for result in first.values():
        assert result["tokens_per_sec"] > 0 and result["time_to_first_step"] > 0 and result["peak_memory_mb"] > 0
    assert len({r["first_batch_sha"] for r in first.values()}) == 1  # same shuffle order, same blocks
    # Same initial weights on the same batch: the same loss, up to HF's (block-1)/block normalisation.
    block = summary["spec"]["block"]
    assert first["lmlab"]["first_loss"] == pytest.approx(first["raw"]["first_loss"], rel=1e-4)
    assert first["hf"]["first_loss"] == pytest.approx(first["raw"]["first_loss"] * (block - 1) / block, rel=1e-4)
    ratio = first["lmlab"]["tokens_per_sec"] / first["raw"]["tokens_per_sec"]
    assert summary["lmlab_vs_raw"][0] == pytest.approx(ratio)


@pytest.mark.slow
def test_data_prep_quick_tokenizes_the_same_text_in_both_pipelines(tmp_path, cache_dir):
    summary = run_bench("data_prep", tmp_path, cache_dir)
    for name, corpus in summary["corpora"].items():
        # lmlab appends one EOS per document; otherwise both pipelines produce the same tokens
        assert corpus["lmlab_tokens"] == corpus["run_clm_tokens"] + corpus["documents"], name
        assert corpus["ratio"] == pytest.approx(corpus["lmlab_tokens_per_sec"] / corpus["run_clm_tokens_per_sec"])
    assert 0 < summary["cached_ready_seconds"] < summary["first_build_seconds"]


@pytest.mark.slow
def test_remote_read_quick_reads_the_same_tokens_from_s3_and_disk(tmp_path, cache_dir):
    summary = run_bench("remote_read", tmp_path, cache_dir)
    assert len(set(summary["checksums"].values())) == 1
    assert all(seconds > 0 for seconds in summary["seconds"].values()) and summary["tokens"] > 0


@pytest.mark.slow
def test_classify_throughput_quick_trains_both_variants_on_the_same_batches(tmp_path, cache_dir):
    if not (ROOT.parent / "shared" / "data" / "sst2" / "train.tsv").is_file():
        pytest.skip("no ../shared/data/sst2")
    summary = run_bench("classify_throughput", tmp_path, cache_dir)
    first = {v: rounds[0] for v, rounds in summary["results"].items()}
    assert set(first) == {"lmlab", "hf"}
    assert all(r["tokens_per_sec"] > 0 and r["time_to_first_step"] > 0 for r in first.values())
    assert first["lmlab"]["first_batch_sha"] == first["hf"]["first_batch_sha"]  # same order, same padding
    # the same pretrained body on the same batch; the fresh heads differ (each run draws its own), so the
    # binary cross-entropy is near log 2 for both
    for result in first.values():
        assert result["first_loss"] == pytest.approx(0.693, abs=0.05)
    assert summary["lmlab_vs_hf"][0] == pytest.approx(first["lmlab"]["tokens_per_sec"] / first["hf"]["tokens_per_sec"])


@pytest.mark.slow
def test_resume_quick_resumes_at_both_positions(tmp_path, cache_dir):
    summary = run_bench("resume", tmp_path, cache_dir)
    for name, step in summary["positions"].items():
        assert summary["final_steps"][name] == [step + 2], name  # resumed at `step`, then trained 2 steps
        assert all(t > 0 for t in summary["seconds"][name])
    assert summary["positions"]["90%"] > 5 * summary["positions"]["10%"]


@pytest.mark.slow
def test_data_prep_scale_mode_tokenizes_one_file_in_every_pipeline(tmp_path, cache_dir):
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, "bench/data_prep.py", "--scale", "--scale-mb", "1", "--quick",
                           "--cache-dir", str(cache_dir), "--work-dir", str(tmp_path / "work"), "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["readme_line"] in proc.stdout
    results = summary["results"]
    assert set(results) == {"lmlab-file", "lmlab-docs", "run_clm-file"}
    assert all(r["tokens"] > 0 and r["seconds"] > 0 and r["peak_tree_pss_mb"] > 0 for r in results.values())
    # the same text: lmlab encodes it whole (cut at lines), run_clm.py line by line; the counts stay close
    assert results["lmlab-file"]["tokens"] == pytest.approx(results["run_clm-file"]["tokens"], rel=0.2)
    assert summary["lmlab_vs_run_clm"] == pytest.approx(
        results["lmlab-file"]["tokens_per_sec"] / results["run_clm-file"]["tokens_per_sec"])


@pytest.mark.slow
def test_step_profile_sums_a_real_runs_step_by_category(tmp_path, cache_dir):
    """bench/step_profile.py (what the next GPU session profiles with), on CPU: op time per step by category."""
    out = tmp_path / "profile.json"
    proc = subprocess.run([sys.executable, "bench/step_profile.py", "model=gpt2-tiny", "data.vocab_size=512",
                           "data.block_size=64", "data.max_documents=60", f"paths.cache_dir={cache_dir}",
                           "--warmup", "2", "--steps", "2", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = json.loads(out.read_text())
    assert table["device"] == "cpu" and table["total_ms"] == pytest.approx(sum(table["per_step_ms"].values()))
    assert table["per_step_ms"]["matrix products"] > 0 and table["per_step_ms"]["attention"] > 0
    assert "steps 3-4" in proc.stdout and "matrix products" in proc.stdout


def test_context_gain_averages_the_models_own_loss_over_positions(tmp_path):
    """bench/context_gain.py: per-position losses whose mean is the loss transformers computes on the same blocks."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    sys.path.insert(0, str(ROOT / "bench"))
    from context_gain import position_losses

    text = "".join(f.read_text() for f in sorted((ROOT / "src" / "lmlab" / "scaling").glob("*.py")))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer.train_from_iterator([text], trainers.BpeTrainer(vocab_size=300))
    (tmp_path / "hf").mkdir()
    tokenizer.save(str(tmp_path / "hf" / "tokenizer.json"))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tokenizer.get_vocab_size(), n_positions=32, n_embd=16, n_layer=1,
                                       n_head=2))
    model.save_pretrained(tmp_path / "hf")
    per = position_losses(tmp_path, text, blocks=8)
    ids = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "hf" / "tokenizer.json"))(text)["input_ids"]
    x = torch.tensor(ids[:8 * 32]).view(8, 32)
    with torch.no_grad():
        expected = model.eval()(x, labels=x).loss
    assert per.shape == (31,) and torch.isfinite(per).all()
    assert per.mean().item() == pytest.approx(expected.item(), rel=1e-5)
