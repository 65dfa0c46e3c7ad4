"""Text generation shared by SFT's exact-match validation and `lmlab-generate`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lmlab.data.chat import conversation, render
from lmlab.models.vocab_padding import pad_token_ids


@dataclass
class Sampling:
    """How to pick each next token: greedy (`do_sample=False`) or sampled with temperature/top-k/top-p."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def generate_kwargs(self) -> dict:
        if not self.do_sample:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        return {"max_new_tokens": self.max_new_tokens, "do_sample": True, "temperature": self.temperature,
                "top_k": self.top_k, "top_p": self.top_p}


def prompt_text(tokenizer, prompt: str | Sequence[dict], chat: bool) -> str:
    """The text the model continues: a chat prompt (template + generation prompt) or the raw prompt."""
    if not chat:
        return prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt)
    messages = conversation(prompt) if isinstance(prompt, str) else list(prompt)
    return render(tokenizer, messages, add_generation_prompt=True)


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str | Sequence[dict]], sampling: Sampling, chat: bool,
             streamer=None) -> list[str]:
    """Completions of `prompts` (one batch, left-padded), decoded without special tokens.

    Stops at EOS (which SFT teaches after every response) or after `max_new_tokens`.
    """
    texts = [prompt_text(tokenizer, p, chat) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # new tokens must follow every prompt directly
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    device = next(model.parameters()).device
    pad_rows = pad_token_ids(model, len(tokenizer))  # vocabulary padding: ids no token maps to
    output = model.generate(
        input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, use_cache=True, streamer=streamer,
        suppress_tokens=pad_rows or None, **sampling.generate_kwargs())
    return tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
