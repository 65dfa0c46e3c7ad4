"""`lmlab-eval SOURCE tasks=[...]`: a causal LM on lm-eval tasks; `lmlab-eval SOURCE [split=validation]`: a
classifier's metrics and per-example predictions, or a reward model's pairwise accuracy and margin
(`lmlab.evaluation.pairs`; `pairs=FILE|DIR` scores other preference pairs).

SOURCE (or `source=`, or `ckpt_path=`) is an lmlab run directory, a checkpoint, a Hugging Face model directory or
a hub name, as `lmlab-generate` takes. With `tasks`, lm-eval scores the model in memory (`lmlab.evaluation`): one
table on the console, and `eval/<task>.json` (lm-eval's results with the checkpoint's step) for each task.

For a classification run, rebuilds the run's data module from its recorded config.yaml, scores the checkpoint
on `split` and writes into the run directory `eval/<split>_metrics.json` (the checkpoint's step and epoch,
accuracy, macro F1, MCC, precision/recall/F1/support of each class, the confusion matrix),
`eval/<split>_confusion_matrix.png` and `eval/<split>_predictions.jsonl` (text, label and predicted label
names, probabilities).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from lmlab.config import check_overrides, config_dir, register_resolvers
from lmlab.errors import LmlabError

log = logging.getLogger("lmlab")


def evaluate(cfg: DictConfig) -> dict:
    from lmlab.runs.validate import EVAL_CHECKS, validate_config

    validate_config(cfg, EVAL_CHECKS)  # before any import of torch or Lightning
    source = cfg.get("source") or cfg.get("ckpt_path")
    if not source:
        raise LmlabError("no model to evaluate: give a run directory, checkpoint or model (lmlab-eval SOURCE ...)")
    if cfg.get("tasks") is not None:
        from lmlab.evaluation.command import evaluate_tasks

        return evaluate_tasks(cfg, str(source))
    return evaluate_run(cfg, str(source))


def evaluate_run(cfg: DictConfig, source: str) -> dict[str, float]:
    """A classification or reward run (or one of its checkpoints), scored on `cfg.split` or `cfg.pairs`."""
    from lmlab.checkpoint.description import is_lmlab_run, run_config

    key = "source" if cfg.get("source") else "ckpt_path"
    ckpt = Path(source).expanduser()
    if ckpt.is_dir() and is_lmlab_run(ckpt):
        ckpt = ckpt / "checkpoints" / "last.ckpt"
    if ckpt.suffix != ".ckpt" or not ckpt.exists():
        if cfg.get("pairs"):
            raise LmlabError(f"source={source!r} is not a reward model's run or checkpoint (a .ckpt file of a "
                             "task=reward run): pairs=... scores reward models")
        raise LmlabError(f"source={source!r} is not a classification run or its checkpoint (a .ckpt file; a reward "
                         "model's too); a language model needs tasks=[...] (lm-eval tasks)")
    run_cfg = run_config(ckpt, key)  # the copy inside the checkpoint: it loads wherever it lies
    run_dir = ckpt.parent.parent if is_lmlab_run(ckpt.parent.parent) else None
    from lmlab.modules import RewardModule, SequenceClassificationModule

    module_class = hydra.utils.get_class(run_cfg.task.module._target_)
    if issubclass(module_class, RewardModule):
        from lmlab.evaluation.pairs import evaluate_reward_model

        return evaluate_reward_model(cfg, ckpt, key, run_cfg, run_dir)
    if cfg.get("pairs"):
        raise LmlabError(f"source={source!r} is a task={run_cfg.get('task_name')} run, not a reward model "
                         "(task=reward): pairs=... scores reward models")
    if not issubclass(module_class, SequenceClassificationModule):
        raise LmlabError(f"source={source!r} is a language-model run: give tasks=[...] to score it on lm-eval "
                         "tasks (e.g. tasks=[lmlab_next_line]); without tasks lmlab-eval scores classifiers and "
                         "reward models")
    return evaluate_classifier(cfg, ckpt, key, run_cfg, run_dir)


def evaluate_classifier(cfg: DictConfig, ckpt: Path, key: str, run_cfg: DictConfig, run_dir: Path | None) \
        -> dict[str, float]:
    from lmlab.checkpoint.reader import load_module, read_checkpoint
    from lmlab.modules import SequenceClassificationModule

    checkpoint = read_checkpoint(ckpt, key)  # a damaged file: one line, before anything is written
    step, epoch, names = checkpoint["global_step"], checkpoint["epoch"], list(checkpoint["hyper_parameters"]["labels"])
    del checkpoint

    import lightning as L
    import torch

    from lmlab.console import quiet_third_party
    from lmlab.modules.metrics import classification_metrics, per_class_report, plot_confusion_matrix

    quiet_third_party()
    log.info("Evaluating %s (step %d, epoch %d) on the %s split", ckpt, step, epoch, cfg.split)
    # the model's own label set: inferred labels are not in config.yaml, and one split may lack a class
    data_cfg = OmegaConf.merge(run_cfg.data, {"splits": [cfg.split], "labels": names})
    if cfg.get("batch_size"):
        data_cfg.eval_batch_size = cfg.batch_size
    datamodule = hydra.utils.instantiate(data_cfg)
    module = load_module(SequenceClassificationModule, ckpt, key, tokenizer=datamodule.tokenizer, labels=names)
    datamodule.module_kwargs()  # checks the split's labels against the model's label set
    trainer = L.Trainer(accelerator=cfg.accelerator, devices=1, logger=False, enable_progress_bar=False)
    outputs = trainer.predict(module, dataloaders=datamodule.dataloader(cfg.split))
    probs = torch.cat([o["probs"] for o in outputs])
    labels = torch.cat([o["labels"] for o in outputs])
    metrics = classification_metrics(len(datamodule.labels), f"{cfg.split}/")(probs.argmax(-1), labels)
    metrics = {k: float(v) for k, v in metrics.items()}
    report = per_class_report(probs.argmax(-1), labels, names)

    out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else (run_dir or Path.cwd()) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{cfg.split}_metrics.json").write_text(json.dumps(
        {"ckpt_path": str(ckpt), "step": step, "epoch": epoch, **metrics, **report}, indent=2))
    plot_confusion_matrix(report["confusion_matrix"]["matrix"], names, out_dir / f"{cfg.split}_confusion_matrix.png",
                          title=f"{cfg.split}, step {step}")
    raw, id2label = datamodule.raw_splits[cfg.split], module.model.config.id2label
    with open(out_dir / f"{cfg.split}_predictions.jsonl", "w") as f:
        for i, (p, y) in enumerate(zip(probs.tolist(), labels.tolist(), strict=True)):
            record = {"index": i, "text": raw[i][datamodule.text_column]}
            if datamodule.text_pair_column:
                record["text_pair"] = raw[i][datamodule.text_pair_column]
            record |= {"label": id2label[y], "prediction": id2label[max(range(len(p)), key=p.__getitem__)],
                       "probabilities": {id2label[j]: round(q, 6) for j, q in enumerate(p)}}
            f.write(json.dumps(record) + "\n")
    log.info("%s (step %d, epoch %d): %s", cfg.split, step, epoch,
             ", ".join(f"{k.split('/', 1)[1]} {v:.4f}" for k, v in metrics.items()))
    for name, scores in report["per_class"].items():
        log.info("  %-20s precision %.4f  recall %.4f  F1 %.4f  support %d", name, scores["precision"],
                 scores["recall"], scores["f1"], scores["support"])
    log.info("Written to %s", out_dir)
    return metrics


@hydra.main(config_path=str(config_dir()), config_name="eval", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    from lmlab.runs.command import run_command

    run_command(evaluate, cfg)


def main() -> None:
    from lmlab.utils.redact import mask_console

    mask_console(sys.argv[1:])
    if len(sys.argv) > 1 and "=" not in sys.argv[1] and not sys.argv[1].startswith("-"):
        sys.argv[1] = f"source={sys.argv[1]}"  # the model as the first argument, as lmlab-generate takes it
    register_resolvers()
    check_overrides("eval", sys.argv[1:])  # a bad override: one line, status 2
    _hydra_main()


if __name__ == "__main__":
    main()
