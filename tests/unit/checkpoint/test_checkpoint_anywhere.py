"""A checkpoint copied out of its run directory loads as it did inside it: it carries its run's config and
tokenizer (`lmlab.checkpoint.description`), for lmlab-generate, lmlab-eval and `model.init_from`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import TINY, train_in_process

from lmlab.errors import LmlabError


def generate(source: Path, out: Path) -> list[str]:
    from lmlab.generate import main

    main([str(source), "def ", "import", "max_new_tokens=6", f"out={out}", "device=cpu"])
    return [json.loads(line)["completion"] for line in out.read_text().splitlines()]


def test_a_checkpoint_copied_anywhere_generates_and_initialises_as_in_its_run(tmp_path, cache_dir):
    from transformers import AutoModelForCausalLM

    from lmlab.checkpoint.init_from import resolve_init_from

    cfg, _ = train_in_process(tmp_path, cache_dir, [*TINY, "trainer.max_steps=2", "callbacks.samples=null",
                                                    "callbacks.export_hf=null"])
    run_dir = Path(cfg.paths.run_dir)
    in_run = generate(run_dir / "checkpoints" / "last.ckpt", tmp_path / "in_run.jsonl")
    elsewhere = tmp_path / "elsewhere" / "x.ckpt"
    elsewhere.parent.mkdir()
    shutil.copy(run_dir / "checkpoints" / "last.ckpt", elsewhere)  # as `cp` would: no .sha256 beside it
    shutil.rmtree(run_dir)  # no config.yaml (nor data config to rebuild the tokenizer from) to lean on

    assert generate(elsewhere, tmp_path / "elsewhere.jsonl") == in_run
    exported = resolve_init_from(str(elsewhere), tmp_path / "init_cache")
    assert AutoModelForCausalLM.from_pretrained(exported).config.n_layer == 2


def test_a_checkpoint_without_its_run_description_outside_its_run_names_the_fix(tmp_path):
    import torch

    from lmlab.checkpoint.locate import locate_model

    old = tmp_path / "old.ckpt"
    torch.save({"global_step": 3, "state_dict": {"w": torch.zeros(2)}}, old)
    with pytest.raises(LmlabError, match="holds no config of its run.*inside its run directory"):
        locate_model(str(old), "source")
