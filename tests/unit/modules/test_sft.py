"""SFT: response-only labels, chat formatting, data checks, learning a held-out synthetic task, lmlab-generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SFT_TINY, TINY, run_cli, train_in_process

from lmlab.contracts import IGNORE_INDEX
from lmlab.data import SFTDataModule, SyntheticInstructions
from lmlab.data.chat import conversation, encode_conversation, render
from lmlab.data.classification_sources import LocalSplits
from lmlab.errors import LmlabError
from lmlab.modules.sft import response_token_stats

# A 2-layer, 128-wide GPT-2 uppercasing 3-5 letter strings with a one-token-per-character tokenizer.


def synthetic_datamodule(cache_dir: Path, **kwargs) -> SFTDataModule:
    source = SyntheticInstructions(tasks=["reverse", "upper"], train_examples=50, validation_examples=10)
    return SFTDataModule(source, vocab_size=261, max_length=64, cache_dir=str(cache_dir), **kwargs)


def test_prompt_tokens_carry_no_loss(cache_dir):
    """Labels are the ids of the response and its EOS only; the model's loss equals the cross-entropy over
    exactly those tokens, and no gradient reaches a logit that predicts a prompt token."""
    tokenizer = synthetic_datamodule(cache_dir).tokenizer
    messages = conversation("reverse abc", "cba", system="be brief")
    input_ids, labels = encode_conversation(tokenizer, messages)
    prompt_len = len(tokenizer(render(tokenizer, messages[:-1], add_generation_prompt=True),
                               add_special_tokens=False)["input_ids"])
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert labels[prompt_len:] == input_ids[prompt_len:]
    assert tokenizer.decode(input_ids[prompt_len:]) == "cba</s>"  # the response, then EOS

    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(tokenizer), bos_token_id=0, eos_token_id=1)
    model = AutoModelForCausalLM.from_config(config).eval()  # no dropout: two forwards agree
    ids = torch.tensor([input_ids])
    loss = model(input_ids=ids, labels=torch.tensor([labels])).loss
    logits = model(input_ids=ids).logits[0]
    by_hand = torch.nn.functional.cross_entropy(logits[prompt_len - 1:-1], ids[0, prompt_len:])
    torch.testing.assert_close(loss, by_hand)
    # the gradient reaches no logit of a position that predicts a prompt token
    logits = model(input_ids=ids).logits.detach().requires_grad_()
    summed, _, count = response_token_stats(logits, torch.tensor([labels]))
    summed.backward()
    assert count == len(input_ids) - prompt_len
    assert logits.grad[0, : prompt_len - 1].abs().sum() == 0 and logits.grad[0, prompt_len - 1:-1].abs().sum() > 0


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_packed_examples_do_not_attend_across_each_other(architecture, cache_dir):
    """data.packing=true: a row of examples back to back gives every token the logits it has alone, and
    the same response-only labels (the first token of each example carries none). Without a KV cache, as
    lmlab trains (`use_cache=False`): transformers reads packing from position_ids only then."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    datamodule = synthetic_datamodule(cache_dir, packing=True, batch_size=3)
    datamodule.setup()
    examples = [datamodule.datasets["train"][i] for i in range(3)]
    packed = datamodule.collator()(examples)
    assert packed["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in examples))
    vocab = len(datamodule.tokenizer)
    config = (GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=vocab) if architecture == "gpt2" else
              LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                          num_key_value_heads=2, vocab_size=vocab))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    with torch.no_grad():
        logits = model(**{k: v for k, v in packed.items() if k != "labels"}, use_cache=False).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([e["input_ids"]])).logits[0] for e in examples])
    torch.testing.assert_close(logits, alone, rtol=1e-4, atol=1e-4)
    want = [label for e in examples for label in [IGNORE_INDEX, *e["labels"][1:]]]
    assert packed["labels"][0].tolist() == want


def test_columns_messages_and_alpaca(tmp_path, cache_dir):
    """prompt/response columns, a messages column and Alpaca's instruction/input/output give the same format."""
    rows = [{"instruction": "upper", "input": "abc", "output": "ABC"}, {"instruction": "say hi", "input": "",
                                                                       "output": "hi"}]
    chats = [{"messages": [{"role": "user", "content": "upper\n\nabc"}, {"role": "assistant", "content": "ABC"}]},
             {"messages": [{"role": "user", "content": "say hi"}, {"role": "assistant", "content": "hi"}]}]
    for name, data in (("alpaca", rows), ("chat", chats)):
        (tmp_path / name).mkdir()
        for split in ("train", "validation"):
            (tmp_path / name / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    tokenizer = synthetic_datamodule(cache_dir).tokenizer.name_or_path
    alpaca = SFTDataModule(LocalSplits(str(tmp_path / "alpaca"), {"train": "train.jsonl",
                                                                   "validation": "validation.jsonl"}),
                           prompt_column="instruction", input_column="input", response_column="output",
                           tokenizer=tokenizer, cache_dir=str(cache_dir))
    chat = SFTDataModule(LocalSplits(str(tmp_path / "chat"), {"train": "train.jsonl",
                                                               "validation": "validation.jsonl"}),
                         tokenizer=tokenizer, cache_dir=str(cache_dir))
    assert alpaca.conversations("train") == chat.conversations("train") == [c["messages"] for c in chats]
    assert alpaca.encode("train") == chat.encode("train")
    assert alpaca.generation_examples()[0] == ([{"role": "user", "content": "upper\n\nabc"}], "ABC")


def test_missing_columns_are_one_line_errors(tmp_path, cache_dir):
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    source = LocalSplits(str(tmp_path), {"train": "train.jsonl", "validation": "train.jsonl"})
    with pytest.raises(LmlabError, match=r"data.messages_column='messages' and data.prompt_column='prompt'"):
        SFTDataModule(source, cache_dir=str(cache_dir)).conversations("train")
    with pytest.raises(LmlabError, match="data.source.tasks=.*unknown tasks"):
        SyntheticInstructions(tasks=["shout"])


def test_validation_prompts_are_held_out():
    source = SyntheticInstructions(train_examples=2000, validation_examples=100)
    letters = lambda split: {p.split()[1] for p in source.load(split)["prompt"]}  # noqa: E731
    assert not letters("train") & letters("validation")
    assert source.load("validation")["prompt"] == source.load("validation")["prompt"]  # deterministic


@pytest.mark.slow
def test_sft_learns_held_out_task_and_generate_answers_it(tmp_path, cache_dir):
    """Acceptance 1 and 4: a tiny GPT-2 trained with task=sft answers >= 90% of held-out prompts exactly
    (greedy lmlab-generate, with the run's chat template)."""
    cfg, _ = train_in_process(tmp_path, cache_dir, [*SFT_TINY, "optimizer.lr=5e-3", "trainer.max_steps=600",
                                                    "trainer.val_check_interval=300"])
    run_dir = Path(cfg.paths.run_dir)
    source = SyntheticInstructions(tasks=["upper"], max_length=5)
    held_out = source.load("validation").select(range(50))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(held_out["prompt"]) + "\n")
    out = tmp_path / "answers.jsonl"
    result = run_cli([str(run_dir), f"file={prompts}", f"out={out}", "max_new_tokens=12"], tmp_path,
                     module="lmlab.generate")
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["chat"] and not r["do_sample"] for r in records)
    exact = sum(r["completion"].strip() == want for r, want in zip(records, held_out["response"], strict=True))
    assert exact / len(records) >= 0.9, records[:5]
    assert records[0]["completion"] in result.stdout  # streamed to the console


@pytest.mark.slow
def test_generate_on_a_clm_run_is_plain_transformers_greedy(tmp_path, cache_dir):
    """Acceptance 4: lmlab-generate on a CLM run (no chat template) equals transformers' own greedy decoding;
    sampling with a seed repeats itself."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, _ = train_in_process(tmp_path, cache_dir, [*TINY, "trainer.max_steps=4", "callbacks.samples=null"])
    hf = Path(cfg.paths.run_dir) / "hf"
    out = tmp_path / "clm.jsonl"
    result = run_cli([str(hf.parent), "def ", "import", "max_new_tokens=8", f"out={out}"], tmp_path,
                     module="lmlab.generate")
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    tokenizer, model = AutoTokenizer.from_pretrained(hf), AutoModelForCausalLM.from_pretrained(hf).eval()
    for record in records:
        assert not record["chat"]
        ids = tokenizer(record["prompt"], return_tensors="pt")["input_ids"]
        want = model.generate(ids, do_sample=False, max_new_tokens=8, pad_token_id=tokenizer.pad_token_id)
        assert record["completion"] == tokenizer.decode(want[0, ids.shape[1]:], skip_special_tokens=True)

    sampled = [run_cli([str(hf), "def ", "sample=true", "temperature=1.5", "top_k=50", "seed=3",
                        "max_new_tokens=8", f"out={tmp_path / f's{i}.jsonl'}"], tmp_path,
                       module="lmlab.generate") for i in range(2)]
    assert all(r.returncode == 0 for r in sampled), sampled[0].stderr[-2000:]
    assert (tmp_path / "s0.jsonl").read_text() == (tmp_path / "s1.jsonl").read_text()


def test_generate_bad_input_is_one_line_error(tmp_path):
    result = run_cli([str(tmp_path / "nope"), "hi"], tmp_path, module="lmlab.generate")
    assert result.returncode == 2 and result.stderr.strip().startswith("error: source=")
    assert len(result.stderr.strip().splitlines()) == 1
