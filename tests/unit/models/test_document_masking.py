"""data.document_masking: no attention across documents in a packed pretraining block, eager and compiled."""

from __future__ import annotations

import pytest
import torch
from test_gpu_path import TINY_CONFIGS

from lmlab.data.document_positions import document_positions
from lmlab.models.document_attention import FLEX, use_document_attention
from lmlab.modules import CausalLMModule
from lmlab.modules.losses import next_token_cross_entropy

EOS = 0
DOCUMENTS = [11, 23, 5, 25]  # lengths, EOS included; the last is cut by the block's end as packing cuts it


def test_positions_restart_after_each_end_of_document_token():
    ids = torch.tensor([[5, 6, EOS, 7, EOS, EOS, 8, 9], [EOS, 1, 2, 3, 4, 5, 6, 7]])
    assert document_positions(ids, EOS).tolist() == [[0, 1, 2, 0, 1, 0, 0, 1], [0, 0, 1, 2, 3, 4, 5, 6]]


def packed_block(batch: int = 2) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Rows of documents back to back (each ending in EOS but the last); also each row's documents."""
    generator = torch.Generator().manual_seed(0)
    rows, documents = [], []
    for _ in range(batch):
        docs = [torch.cat([torch.randint(1, 100, (n - 1,), generator=generator), torch.tensor([EOS])])
                for n in DOCUMENTS]
        docs[-1] = docs[-1][:-1]
        rows.append(torch.cat(docs))
        documents.append(docs)
    return torch.stack(rows), documents


def module(name: str, compile: bool, document_masking: bool = True) -> CausalLMModule:
    torch.manual_seed(0)
    config = {**TINY_CONFIGS[name], "attn_pdrop": 0.0} if name == "gpt2" else TINY_CONFIGS[name]
    model = {"config": config, "pad_vocab_multiple": 64, "compile": compile}
    return CausalLMModule(model=model, optimizer={"_target_": "torch.optim.AdamW"}, vocab_size=100,
                          document_masking=document_masking).eval()


def check_logits_and_loss_equal_documents_alone(name: str, compile: bool, flex: bool) -> None:
    lm = module(name, compile)
    lm.configure_model()  # compile=true: the step compiled, the plain-causal shortcut left off
    use_document_attention(lm.model, flex=flex)  # what configure_model does on a GPU
    assert (lm.model.config._attn_implementation == FLEX) == flex
    ids, documents = packed_block()
    positions = document_positions(ids, EOS)
    logits_of = (lambda i, p: lm.model(input_ids=i, position_ids=p).logits)
    if compile:
        logits_of = torch.compile(logits_of, dynamic=False)
    with torch.no_grad():
        packed = logits_of(ids, positions)
        alone = torch.stack([torch.cat([lm.model(input_ids=d[None]).logits[0] for d in row]) for row in documents])
        torch.testing.assert_close(packed, alone, rtol=1e-4, atol=1e-4)
        # the module's (compiled) training loss: every token predicted from its own document only
        torch.testing.assert_close(lm.next_token_loss(ids, positions), next_token_cross_entropy(alone, ids),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("flex", [False, True], ids=["sdpa", "flex"])
@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_packed_block_logits_equal_each_document_alone(name, flex):
    """Every token of a packed block has the logits of its document run alone: SDPA with the dense mask (CPU)
    and FlexAttention's block mask (the GPU path, run here on the CPU)."""
    check_logits_and_loss_equal_documents_alone(name, compile=False, flex=flex)


@pytest.mark.slow
@pytest.mark.parametrize("flex", [False, True], ids=["sdpa", "flex"])
@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_packed_block_logits_equal_each_document_alone_compiled(name, flex):
    check_logits_and_loss_equal_documents_alone(name, compile=True, flex=flex)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_off_by_default_the_block_is_one_causal_sequence(name):
    """Without document masking, the default, tokens attend across documents (the plain causal path)."""
    lm = module(name, compile=False, document_masking=False)
    lm.configure_model()
    ids, documents = packed_block()
    with torch.no_grad():
        plain = lm.model(input_ids=ids).logits
        torch.testing.assert_close(lm.next_token_loss(ids), next_token_cross_entropy(plain, ids))
        first = lm.model(input_ids=documents[0][0][None]).logits[0]
    n = DOCUMENTS[0]
    torch.testing.assert_close(plain[0, :n], first)  # the first document sees nothing before it either way
    assert not torch.allclose(plain[0, n:], lm.model(input_ids=ids[:1, n:]).logits[0], atol=1e-3)


def test_the_data_module_gives_per_document_positions(tmp_path):
    from lmlab.data import PretrainDataModule, TextFiles

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"{i}.txt").write_text(f"document {i} says " + "words and more words " * (3 + i) + "\n")
    data = PretrainDataModule(TextFiles(train=str(corpus / "*.txt"), validation=str(corpus / "*.txt")),
                              vocab_size=300, block_size=32, batch_size=2, cache_dir=str(tmp_path / "cache"),
                              document_masking=True)
    data.setup()
    batch = next(iter(data.val_dataloader()))
    eos = data.tokenizer.eos_token_id
    assert torch.equal(batch["position_ids"], document_positions(batch["input_ids"], eos))
    assert (batch["input_ids"] == eos).any() and (batch["position_ids"][:, 1:] == 0).any()
