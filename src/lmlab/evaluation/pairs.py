"""`lmlab-eval <reward run> [split=validation] [pairs=FILE|DIR]`: a reward model (`task=reward`) ranks preference
pairs: the share whose chosen response outscores the rejected one (pairwise accuracy, `val/accuracy`'s
definition) and the mean reward margin r_chosen - r_rejected (`val/margin`'s), with each pair's scores.

The pairs are the run's own data (its recorded `data` config, the split named by `split`) or `pairs`: one
preference file (JSON Lines, CSV, Parquet) or a directory holding `<split>.<ext>`, read with the run's column
names. Either way they are tokenized and formatted as training did, with the run's own tokenizer (the one its
checkpoint carries), and scored in the run's `data.eval_batch_size` batches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lmlab.errors import LmlabError

log = logging.getLogger("lmlab")


def pairs_data(cfg: DictConfig, run_cfg: DictConfig) -> DictConfig:
    """The data config that serves the pairs to score: the run's, with `pairs` as its source when given."""
    data = OmegaConf.merge(run_cfg.data, {"splits": [cfg.split], "generation_examples": 0,
                                          "margin_column": None})  # margins train, never score
    if cfg.get("pairs"):
        path = Path(cfg.pairs).expanduser()
        # a file is the split; a directory holds <split>.<ext>
        location = {"path": str(path.parent), "files": {cfg.split: path.name}} if path.is_file() \
            else {"path": str(path), "files": {cfg.split: None}}
        data.source = {"_target_": "lmlab.data.LocalSplits", **location}
    if cfg.get("batch_size"):
        data.eval_batch_size = cfg.batch_size
    if cfg.get("cache_dir"):
        data.cache_dir = cfg.cache_dir
    return data


def evaluate_reward_model(cfg: DictConfig, ckpt: Path, key: str, run_cfg: DictConfig, run_dir: Path | None) \
        -> dict[str, float]:
    """Score the pairs of `cfg.split` with the reward model of `ckpt`; write `<split>_metrics.json` and
    `<split>_pairs.jsonl` into `output_dir` (default: the run's `eval/`)."""
    import hydra
    import lightning as L
    import torch

    from lmlab.checkpoint.description import embedded_tokenizer
    from lmlab.checkpoint.reader import checkpoint_metadata, load_module
    from lmlab.console import quiet_third_party
    from lmlab.modules import RewardModule

    metadata = checkpoint_metadata(ckpt)
    step, epoch = metadata["global_step"], metadata["epoch"]
    del metadata
    quiet_third_party()
    what = f"pairs={cfg.pairs!r}" if cfg.get("pairs") else f"the run's {cfg.split} split"
    datamodule = hydra.utils.instantiate(pairs_data(cfg, run_cfg))
    if (tokenizer := embedded_tokenizer(ckpt, key)) is not None:
        datamodule.tokenizer = datamodule.prepared(tokenizer)  # the run's own, whatever data is scored
    try:
        datamodule.prepare_data()
        datamodule.setup()
    except LmlabError as e:  # the data module names data.* keys: say which argument they came from
        raise LmlabError(f"{what}: {e}") from None
    log.info("Evaluating %s (step %d, epoch %d) on %s: %d pairs", ckpt, step, epoch, what,
             len(datamodule.datasets[cfg.split]))
    module = load_module(RewardModule, ckpt, key, tokenizer=datamodule.tokenizer)
    trainer = L.Trainer(accelerator=cfg.accelerator, devices=1, logger=False, enable_progress_bar=False)
    outputs = trainer.predict(module, dataloaders=datamodule.dataloader(cfg.split))
    chosen = torch.cat([o["chosen"] for o in outputs])
    rejected = torch.cat([o["rejected"] for o in outputs])
    difference = chosen - rejected
    # as lmlab.modules.pair_metrics averages val/accuracy and val/margin: float64 sums over every pair
    metrics = {f"{cfg.split}/accuracy": float((difference > 0).double().mean()),
               f"{cfg.split}/margin": float(difference.double().mean()),
               f"{cfg.split}/chosen_reward": float(chosen.double().mean()),
               f"{cfg.split}/rejected_reward": float(rejected.double().mean())}

    out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else (run_dir or Path.cwd()) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{cfg.split}_metrics.json").write_text(json.dumps(
        {"ckpt_path": str(ckpt), "step": step, "epoch": epoch, "data": cfg.get("pairs") or "run",
         "split": cfg.split, "pairs": len(chosen), **metrics}, indent=2) + "\n")
    decode = datamodule.tokenizer.decode
    with open(out_dir / f"{cfg.split}_pairs.jsonl", "w") as f:
        for i, (row, c, r) in enumerate(zip(datamodule.datasets[cfg.split], chosen.tolist(), rejected.tolist(),
                                            strict=True)):
            f.write(json.dumps({"index": i, "prompt": decode(row["prompt_ids"]), "chosen": decode(row["chosen_ids"]),
                                "rejected": decode(row["rejected_ids"]), "chosen_reward": c, "rejected_reward": r,
                                "margin": c - r, "correct": c > r}) + "\n")
    log.info("%s (step %d, epoch %d), %d pairs: %s", cfg.split, step, epoch, len(chosen),
             ", ".join(f"{k.split('/', 1)[1]} {v:.4f}" for k, v in metrics.items()))
    log.info("Written to %s", out_dir)
    return metrics
