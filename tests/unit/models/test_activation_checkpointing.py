"""Acceptance 3 of issue 22: `model.activation_checkpointing` trains the same model with fewer saved activations."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmlab.errors import LmlabError
from lmlab.models import build_model

CONFIGS = {  # 4 blocks each
    "gpt2": {"_target_": "transformers.GPT2Config", "n_layer": 4, "n_embd": 64, "n_head": 4, "n_positions": 128,
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
    "llama": {"_target_": "transformers.LlamaConfig", "num_hidden_layers": 4, "hidden_size": 64,
              "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 172,
              "max_position_embeddings": 128},
}
TOKENS = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(0))


def build(arch: str, mode: str, every: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights for every mode
    spec = {"config": CONFIGS[arch], "activation_checkpointing": mode, "activation_checkpointing_every": every,
            "pad_vocab_multiple": 64}
    return build_model(spec, AutoModelForCausalLM, vocab_size=256)


def loss_and_gradients(model: torch.nn.Module, compile: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    forward = torch.compile(model) if compile else model
    loss = forward(input_ids=TOKENS, labels=TOKENS).loss
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()}


def assert_same_training(a, b) -> None:
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    assert torch.allclose(loss_a, loss_b, rtol=1e-6, atol=0)
    assert grads_a.keys() == grads_b.keys()
    # relative to each gradient's norm: a compiled graph may sum a tied embedding's two gradients in
    # another order, which moves single tiny elements by more than 1e-6 of themselves
    different = {k: float((grads_a[k] - grads_b[k]).norm() / grads_b[k].norm()) for k in grads_a
                 if (grads_a[k] - grads_b[k]).norm() > 1e-6 * grads_b[k].norm()}
    assert not different, different


def saved_bytes(model: torch.nn.Module) -> int:
    """Bytes of the tensors autograd keeps for the backward of one forward (each storage counted once)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.nn.Parameter):
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=TOKENS, labels=TOKENS).loss.backward()
    return sum(storages.values())


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_checkpointed_blocks_give_the_same_loss_and_gradients(arch):
    reference = loss_and_gradients(build(arch, "none"))
    full, selective = build(arch, "full"), build(arch, "selective", every=2)
    assert_same_training(loss_and_gradients(full), reference)
    assert_same_training(loss_and_gradients(selective), reference)


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_checkpointed_blocks_give_the_same_loss_and_gradients_compiled(arch):
    assert_same_training(loss_and_gradients(build(arch, "full"), compile=True),
                         loss_and_gradients(build(arch, "none"), compile=True))


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_checkpointing_every_block_keeps_less_than_half_the_activations(arch):
    none, full, selective = (saved_bytes(build(arch, mode)) for mode in ("none", "full", "selective"))
    assert full <= none / 2
    assert full < selective < none


def test_selective_checkpoints_one_block_of_every_k():
    from transformers.modeling_layers import GradientCheckpointingLayer

    def flags(model):
        return [m.gradient_checkpointing for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]

    assert flags(build("llama", "none")) == [False] * 4
    assert flags(build("llama", "full")) == [True] * 4
    assert flags(build("llama", "selective", every=2)) == [True, False, True, False]
    assert flags(build("gpt2", "selective", every=3)) == [True, False, False, True]
    with pytest.raises(LmlabError, match="model.activation_checkpointing='some' must be one of none, full, selective"):
        build("gpt2", "some")
