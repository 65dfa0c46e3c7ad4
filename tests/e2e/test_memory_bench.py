"""bench/memory.py: the analytic estimate alone for the big presets, and real steps measured on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT


def memory(tmp_path, *args: str) -> dict:
    out = tmp_path / "memory.json"
    proc = subprocess.run([sys.executable, "bench/memory.py", *args, "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_estimates_of_the_llama_presets_shrink_with_sharding_and_checkpointing(tmp_path):
    common = ["data.vocab_size=128256", "data.block_size=8192", "data.batch_size=1", "trainer=fsdp",
              "--estimate-only"]
    plain = memory(tmp_path, "model=llama-8b", *common, "--world", "1")
    assert plain["parameters"] == 8_030_261_248  # Llama-3-8B's count
    assert plain["estimate"]["optimizer"] == 2 * 4 * plain["parameters"]  # AdamW's two fp32 moments
    sharded = memory(tmp_path, "model=llama-8b", *common, "model.activation_checkpointing=full", "--world", "8")
    assert sharded["estimate"]["optimizer"] == plain["estimate"]["optimizer"] / 8
    assert sharded["estimate"]["activations"] < plain["estimate"]["activations"] / 4
    assert memory(tmp_path, "model=llama-1b", "data.vocab_size=32000", "--estimate-only")["parameters"] == 1_100_048_384


@pytest.mark.slow
def test_measured_peak_of_real_cpu_steps_is_printed_beside_the_estimate(tmp_path):
    result = memory(tmp_path, "model=llama-tiny", "trainer=cpu", "data.block_size=128", "data.batch_size=4",
                    "--steps", "2")
    assert result["measured"]["peak"] > result["estimate"]["parameters"] > 0
