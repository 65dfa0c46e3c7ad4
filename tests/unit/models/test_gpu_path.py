"""The GPU path, checked on CPU: clipping with fused optimizers under mixed precision, vocabulary padding
(export and sampling stay correct), the loss on bf16 logits, and `model.compile=true` without graph breaks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY, metric_series, train_in_process
from grad_norm_probe import total_norm

from lmlab.models.vocab_padding import pad_token_ids, padded_vocab_size
from lmlab.modules import CausalLMModule
from lmlab.modules.clipping import clip_gradients
from lmlab.modules.losses import next_token_cross_entropy

TINY_CONFIGS = {
    "gpt2": {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64},
    "llama": {"_target_": "transformers.LlamaConfig", "num_hidden_layers": 2, "hidden_size": 32,
              "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1, "tie_word_embeddings": True},
}


def tiny_module(name: str = "gpt2", vocab_size: int = 100, **model) -> CausalLMModule:
    torch.manual_seed(0)
    model = {"config": TINY_CONFIGS[name], "pad_vocab_multiple": 64, **model}
    return CausalLMModule(model=model, optimizer={"_target_": "torch.optim.AdamW"}, vocab_size=vocab_size)


# ------------------------------------------------------------------------------------ clipping, fused
def test_bf16_mixed_fused_adamw_with_clipping_trains_and_clips(tmp_path, cache_dir):
    """`trainer=gpu optimizer.fused=true` crashed at the first step (Lightning refused to clip for a fused
    optimizer under mixed precision); CPU runs bf16-mixed and fused AdamW alike."""
    probe = tmp_path / "norms.json"
    train_in_process(tmp_path, cache_dir, [
        *TINY, "trainer.accelerator=cpu", "trainer.precision=bf16-mixed", "optimizer.fused=true",
        "trainer.gradient_clip_val=1.0", "trainer.max_steps=6", "trainer.val_check_interval=6",
        "callbacks.samples=null", "+callbacks.probe._target_=grad_norm_probe.GradNormProbe",
        f"+callbacks.probe.output_file={probe}",
    ])
    norms = json.loads(probe.read_text())
    assert len(norms) == 6
    for before, at_step in norms:
        assert at_step == pytest.approx(min(before, 1.0), rel=1e-3)
    assert any(before > 1.1 for before, _ in norms)  # clipping did act (the first norms are ~1.3 here)


def fp16_setup(clip_to: float, poison: bool = False):
    """A tiny model whose loss is scaled by a 16-mixed GradScaler (2**16), and its fused AdamW."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    precision = MixedPrecision("16-mixed", "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    loss = (model(torch.randn(16, 8)) ** 2).mean() * 100
    precision.scaler.scale(loss).backward()
    if poison:
        next(model.parameters()).grad[0, 0] = float("inf")
    module = SimpleNamespace(trainer=SimpleNamespace(precision_plugin=precision))
    clip_gradients(module, optimizer, clip_to, "norm")
    return model, precision, optimizer


def test_16_mixed_fused_clipping_unscales_first_and_the_step_uses_the_clipped_gradients():
    model, precision, optimizer = fp16_setup(clip_to=0.5)
    assert total_norm(model.parameters()) == pytest.approx(0.5, rel=1e-4)  # unscaled, then clipped
    grads = [p.grad.clone() for p in model.parameters()]
    reference = [p.detach().clone().requires_grad_() for p in model.parameters()]
    for p, g in zip(reference, grads, strict=True):
        p.grad = g
    precision.scaler.step(optimizer)  # must not divide by the scale again
    precision.scaler.update()
    torch.optim.AdamW(reference, lr=0.1).step()
    for got, want in zip(model.parameters(), reference, strict=True):
        assert torch.allclose(got, want, atol=1e-6)


def test_16_mixed_fused_clipping_keeps_the_scalers_skip_on_inf():
    model, precision, optimizer = fp16_setup(clip_to=0.5, poison=True)
    before = [p.detach().clone() for p in model.parameters()]
    scale = precision.scaler.get_scale()
    precision.scaler.step(optimizer)
    precision.scaler.update()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))  # step skipped
    assert precision.scaler.get_scale() < scale


def test_fsdp_norm_clipping_goes_through_the_root_modules_clip_grad_norm():
    """Lightning's FSDPPrecision refuses norm clipping (`trainer=fsdp` with gradient_clip_val crashed); FSDP
    itself can't run on a CPU, so this checks the hand-over: the root FSDP module clips, over all shards."""
    from lightning.pytorch.plugins.precision import FSDPPrecision

    calls = []
    root = SimpleNamespace(clip_grad_norm_=calls.append)
    module = SimpleNamespace(trainer=SimpleNamespace(precision_plugin=FSDPPrecision("bf16-mixed"),
                                                     strategy=SimpleNamespace(model=root)),
                             clip_gradients=lambda *args, **kwargs: calls.append("lightning"))
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], fused=True)
    clip_gradients(module, optimizer, 1.0, None)
    assert calls == [1.0]
    clip_gradients(module, optimizer, 0.0, None)  # no clipping asked: Lightning's own (no-op) path
    assert calls == [1.0, "lightning"]


# --------------------------------------------------------------------------------- vocabulary padding
def test_vocabulary_is_padded_to_a_multiple_of_64_for_models_built_from_a_config():
    assert [padded_vocab_size(n, 64) for n in (50257, 8192, 100, 64)] == [50304, 8192, 128, 64]
    assert padded_vocab_size(50257, None) == 50257
    module = tiny_module(vocab_size=100)
    assert module.model.config.vocab_size == 128 and module.model.get_output_embeddings().weight.shape[0] == 128
    assert module.hparams.vocab_size == 100  # the tokenizer's size, from which a checkpoint rebuilds the model
    assert pad_token_ids(module.model, 100) == list(range(100, 128))
    assert tiny_module(vocab_size=100, pad_vocab_multiple=None).model.config.vocab_size == 100
    # a checkpoint from before padding existed has no pad_vocab_multiple: rebuilt unpadded, so it still loads
    no_key = CausalLMModule(model={"config": TINY_CONFIGS["gpt2"]}, optimizer={}, vocab_size=100)
    assert no_key.model.config.vocab_size == 100


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory, cache_dir):
    """A tiny CLM run whose tokenizer (500 ids) is no multiple of 64: the model has 512 rows."""
    tmp_path = tmp_path_factory.mktemp("padded_run")
    train_in_process(tmp_path, cache_dir, [*TINY, "data.vocab_size=500", "trainer.max_steps=10",
                                           "trainer.val_check_interval=10"])
    return tmp_path / "run"


def test_export_of_a_padded_model_loads_and_gives_lmlabs_logits_on_real_ids(padded_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(padded_run / "hf")
    module = CausalLMModule.load_from_checkpoint(padded_run / "checkpoints" / "last.ckpt", map_location="cpu",
                                                 weights_only=False).eval()
    assert len(tokenizer) == 500 and module.model.config.vocab_size == 512
    exported = AutoModelForCausalLM.from_pretrained(padded_run / "hf").eval()
    assert exported.config.vocab_size == 500  # pad rows sliced off: the export matches its tokenizer
    input_ids = tokenizer("def main():\n    return sorted(items)\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = module.model(input_ids=input_ids).logits[..., :500]
        actual = exported(input_ids=input_ids).logits
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, atol=1e-5)
    assert (padded_run / "samples.txt").read_text().strip()


def test_sampling_never_picks_a_pad_row(padded_run):
    from transformers import AutoTokenizer

    from lmlab.callbacks import SampleContinuations

    tokenizer = AutoTokenizer.from_pretrained(padded_run / "hf")
    module = CausalLMModule.load_from_checkpoint(padded_run / "checkpoints" / "last.ckpt", map_location="cpu",
                                                 weights_only=False, tokenizer=tokenizer).eval()
    module.tokenizer = tokenizer
    # make every pad row the likeliest next token: unsuppressed, sampling would pick them
    module.model.get_output_embeddings().register_forward_hook(
        lambda mod, args, out: out + torch.nn.functional.pad(torch.zeros(500), (0, 12), value=100.0))
    generated = []
    generate = module.model.generate
    module.model.generate = lambda *args, **kwargs: generated.append(generate(*args, **kwargs)) or generated[-1]
    trainer = SimpleNamespace(sanity_checking=False, global_step=1, loggers=[], is_global_zero=True)
    SampleContinuations(num_samples=3, max_new_tokens=8).on_validation_epoch_end(trainer, module)
    assert generated and generated[0].max() < 500
    unsuppressed = generate(torch.tensor([[5, 6]]), do_sample=True, max_new_tokens=4, pad_token_id=0)
    assert unsuppressed[0, 2:].min() >= 500  # the hook does make pad rows win without the suppression


# ----------------------------------------------------------------------------------- loss in bf16
def test_loss_on_bf16_logits_equals_the_fp32_loss_and_never_copies_the_logits_to_fp32():
    from torch.utils._python_dispatch import TorchDispatchMode

    torch.manual_seed(0)
    logits32 = torch.randn(4, 64, 1000) * 3
    input_ids = torch.randint(0, 1000, (4, 64))
    reference = torch.nn.functional.cross_entropy(logits32[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten())
    assert next_token_cross_entropy(logits32, input_ids) == pytest.approx(float(reference), rel=1e-6)

    logits = logits32.bfloat16().requires_grad_()
    full_fp32 = []

    class WatchFp32Copies(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, tuple | list) else (out,):
                if isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.numel() >= logits.numel():
                    full_fp32.append(func)
            return out

    with WatchFp32Copies(), torch.autocast("cpu", dtype=torch.bfloat16):  # autocast would upcast cross_entropy
        loss = next_token_cross_entropy(logits, input_ids)
        loss.backward()
    assert not full_fp32, full_fp32
    assert loss.dtype == torch.float32
    bf16_reference = torch.nn.functional.cross_entropy(logits.detach().float()[:, :-1].flatten(0, 1),
                                                       input_ids[:, 1:].flatten())
    assert float(loss) == pytest.approx(float(bf16_reference), rel=4e-3)  # bf16 rounding of per-token losses


def test_clm_loss_equals_the_models_own_loss_in_fp32():
    module = tiny_module("llama")
    input_ids = torch.randint(0, 100, (3, 20))
    expected = module.model(input_ids=input_ids, labels=input_ids).loss
    assert torch.allclose(module.next_token_loss(input_ids), expected, rtol=1e-6)


# -------------------------------------------------------------------------------------------- compile
@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_compiled_step_is_one_graph_with_head_and_loss(name):
    import torch._dynamo

    module = tiny_module(name, compile=True)
    step = module.next_token_loss  # the uncompiled step, as configure_model will compile it
    module.configure_model()
    assert module.next_token_loss is not step
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(step)(torch.randint(0, 100, (2, 16)))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    nodes = [node for graph in explanation.graphs for node in graph.graph.nodes]
    assert any("cross_entropy" in str(node.target) for node in nodes)  # the loss is inside the graph
    # attention stays SDPA's causal path (FlashAttention on a GPU), not a materialised mask
    attention = [node for node in nodes if "scaled_dot_product_attention" in str(node.target)]
    assert len(attention) == 2 and all(n.kwargs.get("is_causal") is True for n in attention)
    assert all(n.kwargs.get("attn_mask") is None for n in attention)


def test_masked_calls_of_a_declared_model_keep_their_mask():
    """Generation and padded batches pass an attention mask: transformers' own mask, as before."""
    from lmlab.models.causal_attention import declare_plain_causal

    module = tiny_module("llama").eval()
    input_ids = torch.randint(0, 100, (2, 12))
    padding = torch.ones_like(input_ids)
    padding[0, :4] = 0  # left padding in the first row
    with torch.no_grad():
        before = module.model(input_ids=input_ids, attention_mask=padding).logits
        declare_plain_causal(module.model)
        after = module.model(input_ids=input_ids, attention_mask=padding).logits
        unmasked = module.model(input_ids=input_ids).logits
    assert torch.equal(before, after)
    assert not torch.allclose(before[0], unmasked[0])  # the mask did matter for the padded row


@pytest.mark.slow
def test_a_compiled_tiny_run_trains(tmp_path, cache_dir):
    train_in_process(tmp_path, cache_dir, [*TINY, "model.compile=true", "trainer.max_steps=40",
                                           "trainer.val_check_interval=20", "trainer.log_every_n_steps=5",
                                           "optimizer.lr=3e-3", "callbacks.samples=null"])
    losses = [loss for _, loss in metric_series(tmp_path / "run", "train/loss")]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5
    val = [loss for _, loss in metric_series(tmp_path / "run", "val/loss")]
    assert val[-1] < val[0]


@pytest.mark.parametrize(("name", "dtype", "peak"), [
    ("NVIDIA H200", torch.bfloat16, 989.4e12),            # what an H200 reports; Lightning knows "H200 SXM1" only
    ("NVIDIA H100 80GB HBM3", torch.bfloat16, 989.4e12),  # Lightning's own table
    ("NVIDIA H200", torch.float32, None),
])
def test_speed_monitor_knows_the_peak_of_the_gpus_lmlab_is_measured_on(monkeypatch, name, dtype, peak):
    from lmlab.callbacks.speed import device_peak_flops

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert device_peak_flops(torch.device("cuda"), dtype) == pytest.approx(peak)


def test_mfu_count_of_the_padded_124m_model_agrees_with_the_benchmarks_unpadded_count():
    """SpeedMonitor counts the trained (padded) model; bench/train_throughput.py the unpadded one: within 0.1%."""
    from transformers import AutoModelForCausalLM, GPT2Config

    from lmlab.models import flops_per_token

    def count(vocab_size: int) -> float:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=vocab_size))
        return flops_per_token(model, 1024)

    padded, unpadded = count(padded_vocab_size(50257, 64)), count(50257)
    assert padded == pytest.approx(unpadded, rel=1e-3) and padded > unpadded
    params = 124_439_808  # GPT-2 small, tied embeddings, vocabulary 50257
    assert unpadded == 6 * params + 12 * 12 * 768 * 1024
