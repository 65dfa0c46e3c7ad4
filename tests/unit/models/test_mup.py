"""model.mup=true (issue 33): what μP changes in a model and its optimizer, and the coordinate check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from lmlab.errors import LmlabError
from lmlab.models.build import build_model
from lmlab.models.mup import hidden_matrices, mup_param_groups
from lmlab.optim.coord_check import coordinate_check, tiny_spec

WIDTHS = [64, 128, 256, 512]


def built(family: str, width: int, mup: bool, base_width: int = 64, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(tiny_spec(family, width, mup, base_width), AutoModelForCausalLM, vocab_size=256)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hidden_matrices_start_smaller_and_train_slower_the_rest_is_unchanged(family):
    standard, mup = built(family, 256, mup=False), built(family, 256, mup=True)  # m = 4
    assert mup.config.mup_width_multiplier == 4
    for (name, p), q in zip(standard.named_parameters(), mup.parameters(), strict=True):
        hidden = any(q is h for h in hidden_matrices(mup))
        assert torch.allclose(q, p / 2 if hidden else p), name  # std / sqrt(m): variance ∝ 1/fan_in
    assert {n for n, p in mup.named_parameters() if any(p is h for h in hidden_matrices(mup))} >= {
        n for n, p in mup.named_parameters() if p.ndim == 2 and "emb" not in n and "wte" not in n and "wpe" not in n}
    groups = mup_param_groups(mup, [{"params": list(mup.parameters()), "weight_decay": 0.1}], 1e-2, 4)
    assert [g["lr"] for g in groups] == [2.5e-3, 1e-2]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in hidden_matrices(mup)}
    assert all(g["weight_decay"] == 0.1 for g in groups)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_attention_scale_is_one_over_head_dim_and_logits_are_divided_by_m(family):
    standard, mup = built(family, 256, mup=False), built(family, 256, mup=True)
    attention = [m for m in mup.modules() if hasattr(m, "scaling") and hasattr(m, "head_dim")]
    assert attention and all(m.scaling == 1 / 64 for m in attention)  # 256 wide, 4 heads
    with torch.no_grad():  # the same weights but μP's: the logits are the final norm's output / m, projected
        for p, q in zip(standard.parameters(), mup.parameters(), strict=True):
            p.copy_(q)
        for m in standard.modules():
            if hasattr(m, "scaling") and hasattr(m, "head_dim"):
                m.scaling = 1 / m.head_dim
        ids = torch.randint(0, 256, (2, 16))
        assert torch.allclose(mup(input_ids=ids).logits, standard(input_ids=ids).logits / 4, atol=1e-6)


def test_refused_for_a_pretrained_model_and_another_family():
    with pytest.raises(LmlabError, match="model.mup=true is for models built from a config"):
        build_model({"pretrained": "gpt2", "mup": True}, AutoModelForCausalLM)
    spec = {"config": {"_target_": "transformers.BertConfig", "num_hidden_layers": 1, "hidden_size": 32,
                       "num_attention_heads": 2, "intermediate_size": 64}, "mup": True}
    with pytest.raises(LmlabError, match="GPT-2 and Llama models, not 'bert'"):
        build_model(spec, AutoModelForCausalLM, vocab_size=64)


def ratios(family: str, mup: bool, seeds: int) -> dict[str, float]:
    """Mean |activation| at width 512 over width 64, per layer, averaged over `seeds`."""
    runs = [coordinate_check(family, WIDTHS, mup, seed=seed, bias=False) for seed in range(seeds)]
    return {name: np.mean([r[512][name] for r in runs]) / np.mean([r[64][name] for r in runs]) for name in runs[0][64]}


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_coordinate_check(family):
    """5 AdamW steps at lr 1e-2, widths 64 … 512 (GPT-2 bias-free: docs/scaling.md): under μP the logits and
    every block's attention and MLP outputs grow < 1.5x (3 seeds); under SP the logits grow > 3x."""
    mup = ratios(family, True, seeds=3)
    assert max(mup.values()) < 1.5, mup
    assert ratios(family, False, seeds=1)["logits"] > 3


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_an_export_is_a_standard_model_with_the_same_logits(family, tmp_path):
    from lmlab.models.mup import folded

    model = built(family, 128, mup=True)
    ids = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        folded(model).save_pretrained(tmp_path)
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path)  # knows nothing of μP
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-5)
        assert torch.equal(model(input_ids=ids).logits, expected)  # the trained model itself is unchanged
    assert not hasattr(loaded.config, "mup_width_multiplier")
