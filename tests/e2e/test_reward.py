"""task=reward: a Bradley-Terry reward model trained from scratch on the synthetic pairs ranks held-out pairs, and
`lmlab-eval` on its run scores those pairs (or the same pairs from a local file) as its last validation did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import metric_series, run_cli, train_in_process

pytestmark = pytest.mark.slow

REWARD = ["task=reward", "data.source.train_examples=400", "data.source.validation_examples=60",
          "model.config.n_layer=2", "trainer.max_steps=30", "trainer.val_check_interval=30",
          "callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory, cache_dir) -> Path:
    """30 steps on 400 pairs, validated on 60 held-out pairs at the last step (its last.ckpt's weights)."""
    root = tmp_path_factory.mktemp("reward")
    train_in_process(root, cache_dir, REWARD)
    return root / "run"


def test_reward_model_ranks_held_out_pairs(reward_run):
    """val/accuracy (the monitored metric) is over the 60 held-out pairs: measured 0.75 after 30 steps."""
    assert metric_series(reward_run, "val/accuracy")[-1][1] >= 0.65
    assert metric_series(reward_run, "val/margin")[-1][1] > 0
    assert metric_series(reward_run, "train/accuracy")


def held_out_pairs_file(run_dir: Path, path: Path) -> Path:
    """The run's validation pairs as a local JSON Lines file (prompt/chosen/rejected strings)."""
    import hydra
    from omegaconf import OmegaConf

    source = hydra.utils.instantiate(OmegaConf.load(run_dir / "config.yaml").data.source)
    source.load("validation").to_json(str(path))
    return path


@pytest.mark.parametrize("data", ["run", "file"])
def test_lmlab_eval_scores_pairs_as_the_last_validation_did(reward_run, tmp_path, data):
    """Pairwise accuracy and mean margin of `lmlab-eval <run>` on the run's own held-out pairs, or on the same pairs
    written to a local file (`pairs=`), equal the val/accuracy and val/margin logged at the last validation; the
    per-pair JSONL gives the same figures by hand."""
    out = tmp_path / "eval"
    extra = [f"pairs={held_out_pairs_file(reward_run, tmp_path / 'pairs.jsonl')}"] if data == "file" else []
    result = run_cli([str(reward_run), *extra, f"output_dir={out}"], cwd=tmp_path, module="lmlab.evaluate")
    assert result.returncode == 0, result.stderr[-3000:]
    (step, accuracy), = metric_series(reward_run, "val/accuracy")
    (_, margin), = metric_series(reward_run, "val/margin")
    reported = json.loads((out / "validation_metrics.json").read_text())
    assert reported["step"] == step == 30 and reported["pairs"] == 60
    assert reported["validation/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert reported["validation/margin"] == pytest.approx(margin, abs=1e-5)
    assert f"accuracy {accuracy:.4f}" in result.stdout
    rows = [json.loads(line) for line in (out / "validation_pairs.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and all(row["correct"] == (row["chosen_reward"] > row["rejected_reward"]) for row in rows)
    assert sum(row["correct"] for row in rows) / len(rows) == pytest.approx(accuracy, abs=1e-6)
    assert sum(row["margin"] for row in rows) / len(rows) == pytest.approx(margin, abs=1e-5)


def test_lmlab_eval_refuses_pairs_without_a_chosen_column(reward_run, tmp_path):
    """One line, status 2, nothing written (a model that is not a reward model: tests/e2e/test_command_contract.py)."""
    (tmp_path / "bad.jsonl").write_text(json.dumps({"prompt": "upper ab", "better": "AB", "rejected": "ab"}) + "\n")
    out = tmp_path / "out"
    result = run_cli([str(reward_run), f"pairs={tmp_path / 'bad.jsonl'}", f"output_dir={out}"], cwd=tmp_path,
                     module="lmlab.evaluate")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert "no column data.chosen_column='chosen'" in errors[0] and "Traceback" not in result.stderr
    assert not out.exists() and not (reward_run / "eval").exists()
