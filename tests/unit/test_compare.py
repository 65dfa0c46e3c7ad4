"""`lmlab-compare` against hand-written run directories: finished, still running, failed, empty."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.compare import find_runs, load_run, main, plot_against, plot_curves, table_rows
from lmlab.runs.lock import RunLock


def write_run(path: Path, overrides: list[str], val: list[tuple[int, float]] | None = None,
              summary: dict | None = None, error: str | None = None, finished: bool | None = None) -> None:
    path.mkdir(parents=True)
    (path / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (path / "config.yaml").write_text("monitor:\n  metric: val/loss\n  mode: min\n")
    if val is not None:
        rows = ["epoch,step,train/loss,train/tokens_per_sec,val/loss"]
        rows += [f"0,{step},{value + 0.5},{1000 + step},\n0,{step},,,{value}" for step, value in val]
        (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    if finished if finished is not None else summary is not None:
        (path / "finished.json").write_text(json.dumps({"global_step": (summary or {}).get("global_step")}))
    if error is not None:
        (path / "error.txt").write_text(f"{error}\noverrides: {' '.join(overrides)}\n\nTraceback ...\n")


def kill_holding_the_lock(run_dir: Path) -> None:
    """A process that takes the run's lock and is SIGKILLed holding it, as a training launch can be."""
    code = ("import os, signal, sys; from pathlib import Path; from lmlab.runs.lock import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire(); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", code, str(run_dir)]).returncode == -9


@pytest.fixture
def sweep(tmp_path) -> Path:
    sweep = tmp_path / "multirun" / "s1"
    common = ["debug=fast", "paths.cache_dir=/tmp/cache"]
    write_run(sweep / "0", ["model=gpt2-tiny", "optimizer.lr=1e-3", *common], val=[(10, 5.0), (20, 4.2), (30, 4.4)],
              summary={"global_step": 30, "tokens_per_sec": 1234.5, "wall_time_s": 12.5})
    write_run(sweep / "1", ["model=llama-tiny", "optimizer.lr=1e-3", *common], val=[(10, 4.9), (20, 3.9)])
    write_run(sweep / "2", ["model=gpt2-tiny", "optimizer.lr=-1e-3", *common],
              error="LmlabError: optimizer.lr=-0.001 must be a positive learning rate")
    (sweep / "3").mkdir()  # launched, nothing written yet
    (sweep / "multirun.yaml").write_text("{}\n")
    held = RunLock(sweep / "1")
    held.acquire()  # this process trains it
    yield sweep
    held.release()


def test_rows_have_the_varying_overrides_and_the_metrics_of_each_csv(sweep):
    runs = [load_run(p) for p in find_runs([sweep])]
    header, rows = table_rows(runs, "val/loss")
    assert header == ["run", "model", "optimizer.lr", "final val/loss", "best val/loss", "steps", "tokens/s",
                      "wall time (s)", "status"]  # debug/paths are the same everywhere: not columns
    by_run = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert [row[0] for row in rows] == ["1", "0", "2", "3"]  # best val/loss first, runs without it last
    assert by_run["0"] == {"run": "0", "model": "gpt2-tiny", "optimizer.lr": "1e-3", "final val/loss": "4.4",
                             "best val/loss": "4.2", "steps": "30", "tokens/s": "1,234",
                             "wall time (s)": "12.5", "status": "finished"}
    # A run whose lock's holder lives is running: steps and tokens/s come from its CSV.
    assert by_run["1"]["best val/loss"] == "3.9" and by_run["1"]["steps"] == "20"
    assert by_run["1"]["tokens/s"] == "1,015" and by_run["1"]["status"] == "running"
    assert by_run["2"]["optimizer.lr"] == "-1e-3" and by_run["2"]["status"].startswith("failed: LmlabError")
    assert by_run["3"]["status"] == "no metrics yet" and by_run["3"]["best val/loss"] == "—"


def test_reverse_sort(sweep):
    runs = [load_run(p) for p in find_runs([sweep])]
    _, rows = table_rows(runs, "val/loss", reverse=True)
    assert [row[0] for row in rows[:2]] == ["0", "1"]


def test_main_writes_csv_markdown_and_a_png_with_one_curve_per_run_with_metrics(sweep, tmp_path, capsys):
    main([str(sweep), "sort=val/loss"])
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
    assert plot_curves(tmp_path / "curves.png", runs, "val/loss").curves == 2


def test_run_dirs_can_be_given_one_by_one(sweep, tmp_path):
    main([str(sweep / "0"), str(sweep / "1"), f"out={tmp_path / 'out'}"])
    with open(tmp_path / "out" / "compare.csv", newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["1", "0"]


def test_compare_does_not_import_torch_or_lightning():
    code = "import sys, lmlab.compare; sys.exit(any(m in sys.modules for m in ('torch', 'lightning')))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def write_classify_run(path: Path, accuracy: list[tuple[int, float]], loss: list[tuple[int, float]], lr: str) -> None:
    """A classification run (monitor val/accuracy, mode max) with validation rows of accuracy, F1 and loss."""
    path.mkdir(parents=True)
    (path / "overrides.yaml").write_text(f"- task=classify\n- optimizer.lr={lr}\n")
    (path / "config.yaml").write_text("monitor:\n  metric: val/accuracy\n  mode: max\n")
    rows = ["epoch,step,val/accuracy,val/f1_macro,val/loss"]
    rows += [f"0,{s},{a},{a - 0.1},{v}" for (s, a), (_, v) in zip(accuracy, loss, strict=True)]
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def classify_sweep(tmp_path) -> Path:
    sweep = tmp_path / "multirun" / "c"
    write_classify_run(sweep / "0", [(9, 0.60), (19, 0.70)], [(9, 1.0), (19, 0.9)], "1e-3")
    write_classify_run(sweep / "1", [(9, 0.80), (19, 0.75)], [(9, 1.2), (19, 1.1)], "3e-4")
    write_classify_run(sweep / "2", [(9, 0.50), (19, 0.55)], [(9, 0.7), (19, 0.8)], "1e-4")
    return sweep


@pytest.mark.parametrize(("args", "order", "best"), [
    ([], ["1", "0", "2"], "0.8"),                                     # the monitored metric, its mode (max)
    (["sort=val/f1_macro"], ["1", "0", "2"], "0.7"),                  # not monitored: max from the name
    (["sort=val/loss"], ["2", "0", "1"], "0.7"),                      # min from the name
    (["sort=val/accuracy", "mode=min"], ["2", "0", "1"], "0.5"),      # mode= wins
])
def test_sort_picks_the_best_by_the_metrics_mode(classify_sweep, args, order, best):
    main([str(classify_sweep), *args])
    with open(classify_sweep / "compare.csv", newline="") as f:
        table = list(csv.DictReader(f))
    metric = args[0].split("=", 1)[1] if args else "val/accuracy"
    assert [r["run"] for r in table] == order
    assert table[0][f"best {metric}"] == best


def test_several_metrics_each_get_final_and_best_columns_and_a_panel(classify_sweep, tmp_path):
    main([str(classify_sweep), "metric=val/accuracy", "metric=val/loss", f"out={tmp_path / 'o'}"])
    with open(tmp_path / "o" / "compare.csv", newline="") as f:
        table = {r["run"]: r for r in csv.DictReader(f)}
    assert (table["0"]["best val/accuracy"], table["0"]["best val/loss"], table["0"]["final val/loss"]) == \
        ("0.7", "0.9", "0.9")
    assert table["1"]["best val/accuracy"] == "0.8" and table["1"]["final val/accuracy"] == "0.75"
    runs = [load_run(p) for p in find_runs([classify_sweep])]
    assert plot_curves(tmp_path / "two.png", runs, ["val/accuracy", "val/loss"]).curves == 6


def test_plot_steps_count_steps_done_as_the_table_does(sweep, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(plt, "close", lambda fig: drawn.extend(fig.axes[0].lines))
    runs = [load_run(sweep / "0")]
    plot_curves(tmp_path / "c.png", runs, "val/loss")
    assert list(drawn[0].get_xdata()) == [10, 20, 30]  # metrics.csv rows at steps 10, 20, 30; 30 steps in the table
    legend = drawn[0].axes.get_legend()
    assert legend.get_bbox_to_anchor().x0 > drawn[0].axes.get_window_extent().x1 - 1  # beside the axes


def test_a_table_printed_to_a_file_is_not_cut_to_80_columns(classify_sweep):
    long = "a-very-long-override-value-that-would-be-squeezed-into-an-ellipsis-at-80-columns"
    (classify_sweep / "0" / "overrides.yaml").write_text(f"- task=classify\n- optimizer.lr={long}\n")
    result = subprocess.run([sys.executable, "-m", "lmlab.compare", str(classify_sweep), "metric=val/accuracy",
                             "metric=val/loss", "metric=val/f1_macro"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert long in result.stdout and "…" not in result.stdout


def test_two_sweeps_name_rows_by_sweep_and_job_and_warn_when_their_data_differ(sweep, tmp_path, capsys):
    other = tmp_path / "multirun" / "s2"
    write_run(other / "0", ["model=gpt2-tiny", "optimizer.lr=3e-4"], val=[(10, 4.0)],
              summary={"global_step": 10, "tokens_per_sec": 98765.4, "wall_time_s": 3.25})
    for run, vocab in ((sweep / "0", 512), (sweep / "1", 512), (sweep / "2", 512), (other / "0", 2048)):
        (run / "config.yaml").write_text(f"monitor:\n  metric: val/loss\n  mode: min\ndata:\n  vocab_size: {vocab}\n")
    main([str(sweep), str(other), f"out={tmp_path / 'out'}"])
    with open(tmp_path / "out" / "compare.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    by_run = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(by_run) == ["s1/0", "s1/1", "s1/2", "s1/3", "s2/0"]  # job numbers alone would repeat
    # one number format; the run's own tokens/s (summary.json), not the mean of the logged window
    assert [by_run[r]["tokens/s"] for r in ("s2/0", "s1/0", "s1/1")] == ["98,765", "1,234", "1,015"]
    assert by_run["s2/0"]["wall time (s)"] == "3.25"
    assert ("warning: the runs were trained on different data or tokenizers (data.vocab_size: 2048, 512)"
            in capsys.readouterr().err)


def test_a_killed_run_is_killed_and_a_stopped_one_interrupted_at_their_last_step(sweep):
    write_run(sweep / "4", ["model=gpt2-tiny", "optimizer.lr=3e-3"], val=[(10, 5.1), (20, 4.8)])
    kill_holding_the_lock(sweep / "4")
    write_run(sweep / "5", ["model=gpt2-tiny", "optimizer.lr=1e-4"], val=[(10, 5.3)],
              summary={"global_step": 12}, finished=False)  # stopped by a signal: summary, no finished.json
    header, rows = table_rows([load_run(p) for p in find_runs([sweep])], "val/loss")
    status = {row[0]: row[-1] for row in rows}
    assert (status["0"], status["1"], status["4"], status["5"]) == (
        "finished", "running", "killed at step 20", "interrupted at step 12")


def test_defaults_show_by_value_and_long_floats_in_four_digits(tmp_path):
    sweep = tmp_path / "multirun" / "m"
    write_run(sweep / "0", ["data=mixture", "optimizer.lr=0.00019182157424526137"], val=[(10, 4.0)])
    write_run(sweep / "1", ["model=llama-tiny", "optimizer.lr=3e-4"], val=[(10, 4.1)])
    (sweep / "0" / "config.yaml").write_text("model:\n  name: gpt2-tiny\ndata:\n  name: mixture\n")
    (sweep / "1" / "config.yaml").write_text("model:\n  name: llama-tiny\ndata:\n  name: stdlib\n")
    header, rows = table_rows([load_run(p) for p in find_runs([sweep])], "val/loss")
    by_run = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert (by_run["0"]["model"], by_run["0"]["optimizer.lr"], by_run["1"]["data"]) == ("gpt2-tiny", "0.0001918",
                                                                                          "stdlib")


def optuna_like_sweep(root: Path, name: str, trials: int) -> Path:
    """A sweep of `trials` runs whose overrides are an Optuna sampler's long floats."""
    import random

    rng = random.Random(name)
    sweep = root / "multirun" / name
    for i in range(trials):
        overrides = [f"optimizer.lr={rng.uniform(1e-4, 1e-2)!r}", f"optimizer.weight_decay={rng.uniform(0, 0.3)!r}",
                     f"scheduler.num_warmup_steps={rng.choice([5, 10, 20])}", "data=stdlib", "debug=fast"]
        write_run(sweep / str(i), overrides, val=[(10, 5 - rng.random()), (20, 4 - rng.random())])
    return sweep


@pytest.mark.parametrize("sweeps", [1, 2])
def test_the_curves_of_a_20_trial_search_and_of_two_sweeps_stay_readable(sweeps, tmp_path):
    """The legend names only what differs, numbers in 4 digits, and takes at most a third of the saved figure."""
    roots = [optuna_like_sweep(tmp_path, f"search{i}", 20 if sweeps == 1 else 10) for i in range(sweeps)]
    runs = [load_run(p) for p in find_runs(roots)]
    from lmlab.compare import label_runs

    label_runs(runs)
    layout = plot_curves(tmp_path / "c.png", runs, "val/loss")
    assert layout.curves == 20 and layout.size == (1200, 450)
    assert layout.legend_width <= 1 / 3, layout.legend_width
    text = " ".join(layout.labels)
    assert "data=" not in text and "debug=" not in text and "—" not in text  # the same in every run: not named
    assert "lr=" in text and "weight_decay=" in text and "num_warmup_steps=" in text
    import re

    significant = [len(n.replace(".", "").lstrip("0")) for n in re.findall(r"\d[\d.]*", text.split("#", 1)[1])]
    assert max(significant) <= 4, text  # no 20-digit floats
    assert all(len(line) <= 28 for label in layout.labels for line in label.splitlines())
    if sweeps == 2:
        assert "#search0/0 " in text and "#search1/9 " in text


def test_old_flags_still_work_with_one_line_naming_the_new_spelling(classify_sweep, capsys):
    main([str(classify_sweep), "--sort", "val/loss", "--reverse"])
    assert "lmlab-compare: --sort val/loss --reverse: --flags are deprecated, write sort=val/loss reverse=true" in (
        capsys.readouterr().err)
    with open(classify_sweep / "compare.csv", newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["1", "0", "2"]


@pytest.fixture
def lr_sweeps(tmp_path) -> list[Path]:
    """μP's LR-transfer benchmark in miniature: two sweeps of widths × learning rates. Under μP (model.mup left to
    config.yaml's true) the best LR is 4e-3 at both widths; under SP (model.mup=false) it moves to 1e-3."""
    losses = {"mup": {"64": (5.0, 4.5, 4.8), "512": (4.6, 4.2, 4.4)},
              "sp": {"64": (5.0, 4.5, 4.8), "512": (4.3, 4.6, float("nan"))}}  # nan: diverged, left out
    sweeps = []
    for name, by_width in losses.items():
        sweep = tmp_path / "multirun" / name
        job = 0
        for width, values in by_width.items():
            for lr, loss in zip(("1e-3", "4e-3", "1.6e-2"), values, strict=True):
                overrides = [f"model.config.n_embd={width}", f"optimizer.lr={lr}"]
                overrides += ["model.mup=False"] if name == "sp" else []  # as Hydra's sweeper writes a bool
                write_run(sweep / str(job), overrides,
                          val=[(50, loss + 1), (100, loss)], summary={"global_step": 100})
                if name == "mup":
                    (sweep / str(job) / "config.yaml").write_text("model:\n  mup: true\n")
                job += 1
        sweeps.append(sweep)
    return sweeps


def test_the_final_metric_against_a_swept_key_one_curve_per_width_one_panel_per_sweep(lr_sweeps, tmp_path):
    runs = [load_run(p) for p in find_runs(lr_sweeps)]
    drawn = plot_against(tmp_path / "lr.png", runs, "val/loss", "optimizer.lr", "model.config.n_embd", "model.mup")
    assert drawn.best == {("false", "64"): (4e-3, 4.5), ("false", "512"): (1e-3, 4.3),
                          ("true", "64"): (4e-3, 4.5), ("true", "512"): (4e-3, 4.2)}
    assert drawn.points[("true", "512")] == [(1e-3, 4.6), (4e-3, 4.2), (1.6e-2, 4.4)]  # final values, by x
    assert len(drawn.points[("false", "512")]) == 2 and drawn.log_x
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot_against(tmp_path / "w.png", runs, "val/loss", "model.config.n_embd").log_x  # 64 … 512


def test_main_with_x_prints_each_curves_best_and_refuses_a_key_without_numbers(lr_sweeps, tmp_path, capsys):
    main([*map(str, lr_sweeps), "x=optimizer.lr", "curve=model.config.n_embd", "panel=model.mup",
          f"out={tmp_path}"])
    printed = capsys.readouterr().out
    assert "model.mup=false model.config.n_embd=512: 4.3 at optimizer.lr=0.001" in printed
    assert "model.mup=true model.config.n_embd=512: 4.2 at optimizer.lr=0.004" in printed
    assert (tmp_path / "compare_optimizer.lr.png").is_file()
    for args in (["x=model.mup"], ["curve=model.config.n_embd"]):
        with pytest.raises(SystemExit) as exit_:
            main([str(lr_sweeps[0]), *args, f"out={tmp_path}"])
        assert exit_.value.code == 2
    assert "x=model.mup: no run has a number for it" in capsys.readouterr().err
