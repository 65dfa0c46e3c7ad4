"""`model.fp8=true`, checked on CPU: refused with one line where FP8 cannot run; which layers torchao's float8
training takes (the blocks' linear layers with dimensions multiples of 16, never the head); checkpoints keep
their keys and dtypes; the export is plain `nn.Linear` and gives the trained model's logits."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, run_cli

from lmlab.errors import LmlabError
from lmlab.models.fp8 import convert_to_fp8, to_plain_linear
from lmlab.modules import CausalLMModule

# intermediate 120: the MLP's layers are no multiple of 16 and stay in bf16; attention's 64 x 64 go to FP8
TINY_LLAMA = {"_target_": "transformers.LlamaConfig", "num_hidden_layers": 2, "hidden_size": 64,
              "intermediate_size": 120,
              "num_attention_heads": 2, "num_key_value_heads": 1, "tie_word_embeddings": False}


def fp8_module(fp8: bool = True, config: dict | None = None) -> CausalLMModule:
    torch.manual_seed(0)
    module = CausalLMModule(model={"config": config or TINY_LLAMA, "pad_vocab_multiple": 64, "fp8": fp8},
                            optimizer={"_target_": "torch.optim.AdamW"}, vocab_size=100)
    module.configure_model()
    return module


def test_fp8_is_refused_on_a_machine_without_fp8_before_anything_is_written(tmp_path):
    tiny = [o for o in TINY if not o.startswith("model.config.")]  # GPT-2's keys
    result = run_cli([*tiny, "model=llama-tiny", "model.fp8=true", "trainer.accelerator=cpu",
                      f"paths.root_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.fp8=true needs a GPU with FP8"), result.stderr
    assert not any(tmp_path.rglob("metrics.csv")) and not any(tmp_path.rglob("*.ckpt"))


def test_only_the_blocks_linear_layers_with_dimensions_multiple_of_16_go_to_fp8():
    from torchao.float8.float8_linear import Float8Linear

    plain = fp8_module(fp8=False)
    module = fp8_module()
    swapped = sorted(name for name, m in module.model.named_modules() if isinstance(m, Float8Linear))
    assert swapped == sorted(f"model.layers.{i}.self_attn.{p}_proj" for i in range(2) for p in "qkvo")
    assert type(module.model.lm_head) is torch.nn.Linear  # the head (128 x 64) qualifies by size, but is kept
    expected = {k: (v.shape, v.dtype) for k, v in plain.model.state_dict().items()}
    assert {k: (v.shape, v.dtype) for k, v in module.model.state_dict().items()} == expected  # checkpoints alike
    assert all(type(p) is torch.nn.Parameter for p in module.model.parameters())


def test_fp8_loss_is_close_to_the_full_precision_loss_and_trains():
    input_ids = torch.randint(0, 100, (4, 32))
    reference = fp8_module(fp8=False).next_token_loss(input_ids)
    module = fp8_module()
    loss = module.next_token_loss(input_ids)
    assert float(loss) == pytest.approx(float(reference), rel=2e-2)  # e4m3 keeps ~2 significant digits
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.model.parameters())


def test_the_export_has_plain_linear_layers_and_the_trained_models_logits(tmp_path):
    from transformers import AutoModelForCausalLM

    module = fp8_module()
    parameters = dict(module.model.named_parameters())
    assert to_plain_linear(module.model) == 8
    assert all(type(m) is torch.nn.Linear for m in module.model.modules() if isinstance(m, torch.nn.Linear))
    assert all(p is parameters[name] for name, p in module.model.named_parameters())  # same tensors, no copy
    module.model.save_pretrained(tmp_path)
    exported = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    input_ids = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        assert torch.allclose(exported(input_ids=input_ids).logits, module.model.eval()(input_ids=input_ids).logits)


def test_a_model_without_eligible_linear_layers_is_refused():
    gpt2 = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64}
    with pytest.raises(LmlabError, match="no linear layer that can run in FP8"):
        convert_to_fp8(fp8_module(fp8=False, config=gpt2).model)
