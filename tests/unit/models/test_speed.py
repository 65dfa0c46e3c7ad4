"""The speed work keeps results identical: the fused loss equals the model's own loss and gradients."""

from __future__ import annotations

import pytest
import torch

from lmlab.contracts import IGNORE_INDEX
from lmlab.modules.losses import linear_cross_entropy
from lmlab.utils.allocator import keep_freed_memory


def test_linear_cross_entropy_matches_unfused_in_float64():
    torch.manual_seed(0)
    hidden = torch.randn(3, 100, 32, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 32, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (3, 100))
    targets[:, ::7] = IGNORE_INDEX
    fused = linear_cross_entropy(hidden, weight, targets, chunk_size=64)  # chunks that don't divide 300
    reference = torch.nn.functional.cross_entropy((hidden @ weight.T).flatten(0, 1), targets.flatten())
    assert torch.allclose(fused, reference)
    for got, want in zip(torch.autograd.grad(3 * fused, (hidden, weight)),
                         torch.autograd.grad(3 * reference, (hidden, weight)), strict=True):
        assert torch.allclose(got, want)


@pytest.mark.parametrize("config", [
    # tied input/output embeddings; no dropout, so both passes see the same network
    {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64,
     "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
    {"_target_": "transformers.LlamaConfig", "num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
     "num_attention_heads": 2, "num_key_value_heads": 1, "tie_word_embeddings": False},
], ids=["gpt2", "llama"])
def test_causal_lm_module_fused_loss_equals_model_loss_and_gradients(config):
    from lmlab.modules import CausalLMModule

    spec = {"config": config}
    torch.manual_seed(0)
    module = CausalLMModule(model=spec, optimizer={"_target_": "torch.optim.AdamW"}, vocab_size=97, fused_loss=True)
    assert module.fused_loss
    input_ids = torch.randint(0, 97, (4, 40))
    fused = module.next_token_loss(input_ids)
    fused_grads = torch.autograd.grad(fused, list(module.model.parameters()))
    reference = module.model(input_ids=input_ids, labels=input_ids).loss
    reference_grads = torch.autograd.grad(reference, list(module.model.parameters()))
    assert torch.allclose(fused, reference, atol=1e-5)
    for got, want in zip(fused_grads, reference_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # validation: same value, no gradient work
        assert torch.allclose(module.next_token_loss(input_ids), reference, atol=1e-5)


def test_keep_freed_memory_stops_page_faults_on_reallocation():
    import resource

    if not keep_freed_memory():
        pytest.skip("not glibc")

    def faults_for_reallocations() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            torch.ones(64 * 2**20 // 4)  # 64 MB: above glibc's largest default mmap threshold
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_for_reallocations()  # the first allocation grows the heap once
    assert faults_for_reallocations() < 1000  # unfixed: 5 × 16k pages faulted in again


def test_progress_bar_reads_metrics_only_when_a_log_is_due(monkeypatch):
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import RichProgressBar

    from lmlab.callbacks import ProgressBar

    reads = []
    monkeypatch.setattr(RichProgressBar, "get_metrics", lambda self, trainer, module: reads.append(trainer.global_step)
                        or {"train/loss": float(trainer.global_step)})
    bar = ProgressBar()
    shown = [bar.get_metrics(SimpleNamespace(training=True, global_step=step, log_every_n_steps=5), None)
             for step in range(1, 12)]
    assert reads == [1, 5, 10]  # the first step, then only logging steps
    assert shown[3] == {"train/loss": 1.0} and shown[-1] == {"train/loss": 10.0}
    bar.get_metrics(SimpleNamespace(training=False, global_step=11, log_every_n_steps=5), None)
    assert reads[-1] == 11  # validation always shows fresh metrics


def test_fused_activations_compute_the_same_function_and_gradients():
    import copy

    from transformers import AutoModelForCausalLM, GPT2Config

    from lmlab.models import fuse_activations

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=97, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    reference = AutoModelForCausalLM.from_config(config).double()
    fused = copy.deepcopy(reference)
    assert fuse_activations(fused) == 2  # one per block
    assert not any(type(m).__name__ == "NewGELUActivation" for m in fused.modules())
    input_ids = torch.randint(0, 97, (3, 20))
    losses = [m(input_ids=input_ids, labels=input_ids).loss for m in (reference, fused)]
    assert torch.allclose(losses[0], losses[1], rtol=1e-12)
    for got, want in zip(*(torch.autograd.grad(loss, list(m.parameters())) for loss, m in zip(
            losses, (reference, fused), strict=True)), strict=True):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)
