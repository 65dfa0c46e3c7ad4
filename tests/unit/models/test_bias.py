"""`model.bias=false` (a candidate for passing nanoGPT, off until measured): every bias zero and frozen is a
bias-free GPT-2 that trains like the default, keeps its checkpoint layout, and is refused for a pretrained model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmlab.errors import LmlabError
from lmlab.models import build_model
from lmlab.modules import CausalLMModule
from lmlab.modules.base import weight_decay_groups

TINY_GPT2 = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64,
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def train_steps(bias: bool, steps: int = 8) -> tuple[list[float], CausalLMModule]:
    torch.manual_seed(0)
    module = CausalLMModule(model={"config": TINY_GPT2, "pad_vocab_multiple": 64, "bias": bias},
                            optimizer={"_target_": "torch.optim.AdamW"}, vocab_size=100)
    optimizer = torch.optim.AdamW(weight_decay_groups(module.model, 0.1), lr=1e-2)
    input_ids = torch.randint(0, 100, (4, 32), generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(steps):
        loss = module.next_token_loss(input_ids)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    return losses, module


def test_a_bias_free_gpt2_trains_like_the_default_and_keeps_its_layout():
    default_losses, default = train_steps(bias=True)
    losses, module = train_steps(bias=False)
    assert losses[0] == pytest.approx(default_losses[0], rel=1e-6)  # GPT-2 initialises its biases at zero
    assert losses[-1] < losses[0] - 1.0 and losses[-1] == pytest.approx(default_losses[-1], rel=0.05)
    biases = {name: p for name, p in module.model.named_parameters() if name.endswith(".bias")}
    assert len(biases) == 2 * 6 + 1  # per block: ln_1, c_attn, attn c_proj, ln_2, c_fc, mlp c_proj; and ln_f
    assert all(not p.requires_grad and p.grad is None and not p.any() for p in biases.values())
    assert any(p.any() for name, p in default.model.named_parameters() if name.endswith(".bias"))  # those trained
    assert set(module.model.state_dict()) == set(default.model.state_dict())


def test_the_export_of_a_bias_free_gpt2_is_a_plain_gpt2(tmp_path):
    _, module = train_steps(bias=False, steps=2)
    module.model.save_pretrained(tmp_path)
    exported = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    input_ids = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        assert torch.allclose(exported(input_ids=input_ids).logits, module.model.eval()(input_ids=input_ids).logits,
                              atol=1e-5)


def test_bias_false_is_refused_for_a_pretrained_model():
    with pytest.raises(LmlabError, match="model.bias=false is for models built from a config"):
        build_model({"pretrained": "gpt2", "bias": False}, AutoModelForCausalLM)
