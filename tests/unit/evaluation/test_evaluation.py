"""lmlab-eval on causal LMs through lm-eval, the embedded next-line task, bits per byte."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA, TEST_CALLBACKS, TINY, metric_series, read_metrics, run_cli

BENCHMARKS = SHARED_DATA / "benchmarks"

# lm-eval's lambada_openai and arc_easy, reading the local copies (ARC's rows nest the question and choices)
LAMBADA_YAML = """task: lambada_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
output_type: loglikelihood
test_split: test
doc_to_text: "{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' '+text.split(' ')[-1]}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
ARC_EASY_YAML = """task: arc_easy_local
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {path}
output_type: multiple_choice
validation_split: validation
doc_to_text: "Question: {{{{question.stem}}}}\\nAnswer:"
doc_to_target: "{{{{(question.choices|map(attribute='label')|list).index(answerKey)}}}}"
doc_to_choice: "{{{{question.choices|map(attribute='text')|list}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def clm_run(tmp_path_factory, cache_dir) -> Path:
    """A tiny CLM run (20 steps) with its hf/ export and checkpoints."""
    root = tmp_path_factory.mktemp("clm")
    result = run_cli([*TINY, f"paths.root_dir={root}", f"paths.cache_dir={cache_dir}", f"run_dir={root / 'run'}"],
                     cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "run"


def local_tasks(directory: Path) -> Path:
    if not (BENCHMARKS / "lambada" / "lambada_test.jsonl").is_file():
        pytest.skip("the local benchmark copies (../shared/data/benchmarks) are not here")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lambada_local.yaml").write_text(
        LAMBADA_YAML.format(path=BENCHMARKS / "lambada" / "lambada_test.jsonl"))
    (directory / "arc_easy_local.yaml").write_text(
        ARC_EASY_YAML.format(path=BENCHMARKS / "arc_easy" / "ARC-Easy-Dev.jsonl"))
    return directory


def lm_eval_cli(model_dir: Path, tasks: Path, out: Path, limit: int, batch_size: int) -> dict:
    """lm-eval's own command line on a Hugging Face directory: its results JSON."""
    result = subprocess.run([Path(sys.executable).parent / "lm_eval", "--model", "hf", "--model_args",
                             f"pretrained={model_dir}", "--device", "cpu", "--tasks", "lambada_local,arc_easy_local",
                             "--include_path", str(tasks), "--limit", str(limit), "--batch_size", str(batch_size),
                             "--output_path", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    return json.loads(results_file.read_text())["results"]


@pytest.mark.slow
def test_lmlab_eval_equals_lm_eval_cli(clm_run, tmp_path):
    """Acceptance: the in-memory model through lmlab-eval gives lm-eval's own CLI figures on the hf/ export."""
    tasks = local_tasks(tmp_path / "tasks")
    result = run_cli([str(clm_run), "tasks=[lambada_local,arc_easy_local]", f"include_path=[{tasks}]", "limit=12",
                      "batch_size=4"], cwd=tmp_path, module="lmlab.evaluate")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lambada_local" in result.stdout and "acc_norm" in result.stdout  # the table
    ours = {task: json.loads((clm_run / "eval" / f"{task}.json").read_text())
            for task in ("lambada_local", "arc_easy_local")}
    assert ours["lambada_local"]["step"] == 20 and ours["lambada_local"]["limit"] == 12
    theirs = lm_eval_cli(clm_run / "hf", tasks, tmp_path / "cli", limit=12, batch_size=4)
    for task, metrics in (("lambada_local", ["acc,none", "perplexity,none"]),
                          ("arc_easy_local", ["acc,none", "acc_norm,none"])):
        for metric in metrics:
            assert ours[task]["results"][metric] == theirs[task][metric], (task, metric)
    assert ours["lambada_local"]["results"]["perplexity,none"] > 1


@pytest.mark.slow
def test_lmlab_eval_refuses_bad_tasks(clm_run, tmp_path):
    """A language model without tasks, an unknown task, a missing include_path: one line, status 2."""
    for args, expected in (([], "tasks=[...]"), (["tasks=[no_such_task]"], "no_such_task"),
                           (["tasks=[lmlab_next_line]", f"include_path=[{tmp_path / 'missing'}]"], "include_path")):
        result = run_cli([str(clm_run), *args], cwd=tmp_path, module="lmlab.evaluate", timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]


@pytest.mark.slow
def test_downstream_eval_equals_lmlab_eval_on_the_checkpoint_and_logs_each_point_once(tmp_path, cache_dir):
    """Acceptance: eval/<task>/<metric> at steps 10 and 20 equal lmlab-eval on step10's and step20's checkpoints;
    killed right after step 10 (its evaluation and checkpoint on disk) and resumed, each point is in metrics.csv
    once."""
    tasks = local_tasks(tmp_path / "tasks")
    run_dir = tmp_path / "run"
    args = [*TINY, "callbacks=downstream_eval", "callbacks.downstream_eval.tasks=[arc_easy_local]",
            f"callbacks.downstream_eval.include_path=[{tasks}]", "callbacks.downstream_eval.limit=8",
            "callbacks.downstream_eval.batch_size=4", "callbacks.downstream_eval.every_n_steps=10",
            "callbacks.samples=null", f"run_dir={run_dir}", f"paths.root_dir={tmp_path}",
            f"paths.cache_dir={cache_dir}"]
    kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=10"]
    killed = run_cli([*args, *kill], cwd=tmp_path, env=TEST_CALLBACKS)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert [step for step, _ in metric_series(run_dir, "eval/arc_easy_local/acc")] == [10]
    resumed = run_cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in (run_dir / "train.log").read_text()
    series = {metric: metric_series(run_dir, f"eval/arc_easy_local/{metric}") for metric in ("acc", "acc_norm")}
    assert [step for step, _ in series["acc"]] == [10, 20]  # the validation rows of steps 10 and 20, once each
    for i, ckpt in enumerate(("step000010.ckpt", "step000020.ckpt")):
        out = tmp_path / ckpt
        result = run_cli([str(run_dir / "checkpoints" / ckpt), "tasks=[arc_easy_local]", f"include_path=[{tasks}]",
                          "limit=8", "batch_size=4", f"output_dir={out}"], cwd=tmp_path, module="lmlab.evaluate")
        assert result.returncode == 0, result.stderr[-3000:]
        figures = json.loads((out / "arc_easy_local.json").read_text())["results"]
        for metric, points in series.items():
            assert points[i][1] == figures[f"{metric},none"], (ckpt, metric)


def test_next_line_examples_hold_the_true_line_and_scrambles_of_it():
    from lmlab.evaluation.next_line import CONTEXT_LINES, examples

    documents = ["\n".join(f"    value_{d}_{i} = compute({d}, {i}) + offset" for i in range(40)) for d in range(6)]
    rows = examples(documents)
    assert rows == examples(documents)  # the same on every run
    for row in rows[:200]:
        assert len(row["choices"]) == 4 and len(set(row["choices"])) == 4
        context = row["context"].splitlines()
        assert len(context) == CONTEXT_LINES
        d, i = context[-1].split("value_")[1].split(" ")[0].split("_")
        true_line = f"    value_{d}_{int(i) + 1} = compute({d}, {int(i) + 1}) + offset"
        assert row["choices"][row["label"]] == true_line
        for choice in row["choices"]:  # the distractors: the same words, reordered, at the same indentation
            assert choice.startswith("    ") and sorted(choice.split()) == sorted(true_line.split())
    assert {row["label"] for row in rows} == {0, 1, 2, 3}


def ascii_corpus(directory: Path) -> tuple[str, str]:
    """Pure-ASCII standard-library modules as train files and one validation file: (train glob, validation)."""
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted((stdlib / "email").glob("*.py")) if p.read_bytes().isascii()]
    (directory / "train").mkdir(parents=True)
    for path in files[1:]:
        (directory / "train" / path.name).write_bytes(path.read_bytes())
    (directory / "validation.txt").write_bytes(b"".join(p.read_bytes() for p in files[:1] + files[-3:]))
    return str(directory / "train" / "*.py"), str(directory / "validation.txt")


def hand_bits_per_byte(run_dir: Path) -> tuple[float, int, int]:
    """(summed nats / ln 2 / bytes, bytes, tokens) of the whole validation split, computed here from the
    run's last checkpoint and the decoded text of every token scored."""
    import hydra
    import torch
    from omegaconf import OmegaConf

    from lmlab.modules import CausalLMModule

    run_cfg = OmegaConf.load(run_dir / "config.yaml")
    datamodule = hydra.utils.instantiate(run_cfg.data)
    datamodule.setup("validate")
    module = CausalLMModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                                 weights_only=False).eval()
    nats, num_bytes, tokens = 0.0, 0, 0
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            ids = batch["input_ids"]
            logits = module.model(input_ids=ids).logits[:, :-1]
            nats += torch.nn.functional.cross_entropy(logits.flatten(0, 1).double(), ids[:, 1:].flatten(),
                                                      reduction="sum").item()
            num_bytes += sum(len(datamodule.tokenizer.decode(row[1:], skip_special_tokens=True).encode("utf-8"))
                             for row in ids.tolist())
            tokens += ids[:, 1:].numel()
    return nats / math.log(2) / num_bytes, num_bytes, tokens


@pytest.mark.slow
def test_bits_per_byte_is_the_hand_computation_for_two_vocabularies(tmp_path, cache_dir):
    """val/bpb equals summed nats / ln 2 / UTF-8 bytes scored; runs with 2k and 8k vocabularies score the same text."""
    train_glob, validation = ascii_corpus(tmp_path / "corpus")
    figures = {}
    for vocab in (2048, 8192):
        run_dir = tmp_path / f"vocab{vocab}"
        result = run_cli([*TINY, "data=files", f"data.source.train={train_glob}",
                          f"data.source.validation={validation}", f"data.vocab_size={vocab}",
                          "data.max_documents=null", "trainer.limit_val_batches=1.0",
                          f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}", f"run_dir={run_dir}"],
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        logged = [float(r["val/bpb"]) for r in read_metrics(run_dir) if r.get("val/bpb")][-1]
        bpb, num_bytes, tokens = hand_bits_per_byte(run_dir)
        assert logged == pytest.approx(bpb, rel=1e-5)
        figures[vocab] = (num_bytes, tokens)
    (bytes_2k, tokens_2k), (bytes_8k, tokens_8k) = figures[2048], figures[8192]
    validation_bytes = Path(validation).stat().st_size
    assert tokens_8k < 0.9 * tokens_2k  # the larger vocabulary needs fewer tokens: per-token losses differ in kind
    for num_bytes in (bytes_2k, bytes_8k):  # but both score (nearly) all of the same text's bytes
        assert 0.95 * validation_bytes <= num_bytes <= validation_bytes


@pytest.mark.slow
def test_downstream_eval_on_two_processes_equals_one(tmp_path, cache_dir):
    """Rank 0 evaluates the same weights whatever the process count (global batch 8 on 1 or 2 gloo processes)."""
    from resume_helpers import completed_run
    from test_ddp import DDP

    tasks = local_tasks(tmp_path / "tasks")
    downstream = ["callbacks=downstream_eval", "callbacks.downstream_eval.tasks=[arc_easy_local]",
                  f"callbacks.downstream_eval.include_path=[{tasks}]", "callbacks.downstream_eval.limit=8",
                  "callbacks.downstream_eval.batch_size=4", "callbacks.downstream_eval.every_n_steps=12"]
    runs = []
    for name, extra in (("one", []), ("two", ["trainer=ddp"])):
        (tmp_path / name).mkdir()
        runs.append(completed_run(tmp_path / name, [*DDP, *downstream, *extra], cache_dir))
    for metric in ("acc", "acc_norm"):
        one, two = (metric_series(run, f"eval/arc_easy_local/{metric}") for run in runs)
        assert len(one) >= 2 and one == two, (metric, one, two)


def test_lmlab_compare_ranks_downstream_figures_the_right_way():
    from lmlab.compare import metric_mode

    assert metric_mode("eval/arc_easy/acc", []) == metric_mode("eval/arc_easy/acc_norm", []) == "max"
    assert metric_mode("eval/lambada_openai/perplexity", []) == metric_mode("val/bpb", []) == "min"
