"""`lmlab-compare` against hand-written run directories: finished, still running, failed, empty."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.compare import find_runs, load_run, main, plot_curves, table_rows


def write_run(path: Path, overrides: list[str], val: list[tuple[int, float]] | None = None,
              summary: dict | None = None, error: str | None = None) -> None:
    path.mkdir(parents=True)
    (path / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (path / "config.yaml").write_text("monitor:\n  metric: val/loss\n  mode: min\n")
    if val is not None:
        rows = ["epoch,step,train/loss,train/tokens_per_sec,val/loss"]
        rows += [f"0,{step},{value + 0.5},{1000 + step},\n0,{step},,,{value}" for step, value in val]
        (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    if error is not None:
        (path / "error.txt").write_text(f"{error}\noverrides: {' '.join(overrides)}\n\nTraceback ...\n")


@pytest.fixture
def sweep(tmp_path) -> Path:
    sweep = tmp_path / "multirun" / "s1"
    common = ["debug=fast", "paths.cache_dir=/tmp/cache"]
    write_run(sweep / "0", ["model=gpt2-tiny", "optimizer.lr=1e-3", *common], val=[(9, 5.0), (19, 4.2), (29, 4.4)],
              summary={"global_step": 30, "tokens_per_sec": 1234.5, "wall_time_s": 12.5})
    write_run(sweep / "1", ["model=llama-tiny", "optimizer.lr=1e-3", *common], val=[(9, 4.9), (19, 3.9)])
    write_run(sweep / "2", ["model=gpt2-tiny", "optimizer.lr=-1e-3", *common],
              error="LmlabError: optimizer.lr=-0.001 must be a positive learning rate")
    (sweep / "3").mkdir()  # launched, nothing written yet
    (sweep / "multirun.yaml").write_text("{}\n")
    return sweep


def test_rows_have_the_varying_overrides_and_the_metrics_of_each_csv(sweep):
    runs = [load_run(p) for p in find_runs([sweep])]
    header, rows = table_rows(runs, "val/loss")
    assert header == ["run", "model", "optimizer.lr", "final val/loss", "best val/loss", "steps", "tokens/s",
                      "wall time (s)", "status"]  # debug/paths are the same everywhere: not columns
    by_run = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert [row[0] for row in rows] == ["1", "0", "2", "3"]  # best val/loss first, runs without it last
    assert by_run["0"] == {"run": "0", "model": "gpt2-tiny", "optimizer.lr": "1e-3", "final val/loss": "4.4",
                             "best val/loss": "4.2", "steps": "30", "tokens/s": "1.02e+03",
                             "wall time (s)": "12.5", "status": "finished"}
    # A run without summary.json is still running: steps and tokens/s come from its CSV.
    assert by_run["1"]["best val/loss"] == "3.9" and by_run["1"]["steps"] == "20"
    assert by_run["1"]["tokens/s"] == "1.01e+03" and by_run["1"]["status"] == "running"
    assert by_run["2"]["optimizer.lr"] == "-1e-3" and by_run["2"]["status"].startswith("failed: LmlabError")
    assert by_run["3"]["status"] == "no metrics yet" and by_run["3"]["best val/loss"] == "—"


def test_reverse_sort(sweep):
    runs = [load_run(p) for p in find_runs([sweep])]
    _, rows = table_rows(runs, "val/loss", reverse=True)
    assert [row[0] for row in rows[:2]] == ["0", "1"]


def test_main_writes_csv_markdown_and_a_png_with_one_curve_per_run_with_metrics(sweep, tmp_path, capsys):
    main([str(sweep), "--sort", "val/loss"])
    printed = capsys.readouterr().out
    assert "4 runs, sorted by best val/loss" in printed and "must be a positive learning rate" in printed
    with open(sweep / "compare.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["run"], r["model"], r["best val/loss"]) for r in table] == [
        ("1", "llama-tiny", "3.9"), ("0", "gpt2-tiny", "4.2"), ("2", "gpt2-tiny", "—"), ("3", "—", "—")]
    markdown = (sweep / "compare.md").read_text().splitlines()
    assert markdown[0].startswith("| run | model | optimizer.lr |") and len(markdown) == 2 + 4
    assert (sweep / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = [load_run(p) for p in find_runs([sweep])]
    assert plot_curves(tmp_path / "curves.png", runs, "val/loss") == 2


def test_run_dirs_can_be_given_one_by_one(sweep, tmp_path):
    main([str(sweep / "0"), str(sweep / "1"), "--out", str(tmp_path / "out")])
    with open(tmp_path / "out" / "compare.csv", newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["1", "0"]


def test_compare_does_not_import_torch_or_lightning():
    code = "import sys, lmlab.compare; sys.exit(any(m in sys.modules for m in ('torch', 'lightning')))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
