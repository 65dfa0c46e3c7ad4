"""Chat formatting for SFT: the tokenizer's chat template, else lmlab's default one; labels on responses only.

The default template (for tokenizers without one, e.g. the BPE lmlab trains) writes each turn as a role
marker, the text and an end marker; an assistant turn ends with the tokenizer's EOS instead, so a model
learns to stop. The markers are special tokens (never split, never produced by ordinary text):

    <|system|>You are terse.<|end|><|user|>reverse abc<|end|><|assistant|>cba</s>

A generation prompt is everything up to and including `<|assistant|>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmlab.contracts import IGNORE_INDEX
from lmlab.errors import LmlabError

ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
DEFAULT_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>' + message['content'] }}"
    "{%- if message['role'] == 'assistant' -%}{{ eos_token }}{%- else -%}{{ '<|end|>' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}"
)


def with_chat_template(tokenizer):
    """The tokenizer, given lmlab's default template and role-marker special tokens if it has no template."""
    if tokenizer.chat_template:
        return tokenizer
    from tokenizers import AddedToken

    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in ROLE_TOKENS], special_tokens=True)
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def conversation(prompt: str, response: str | None = None, system: str | None = None) -> list[dict[str, str]]:
    """A single-turn conversation in the `messages` format."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


def render(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_conversation(tokenizer, messages: Sequence[dict]) -> tuple[list[int], list[int]]:
    """Token ids of the formatted conversation and labels that are -100 except on assistant responses.

    A response's span is found in characters (the text between the generation prompt before it and the
    conversation up to its end, so the EOS that closes it counts) and mapped to tokens by their offsets.
    """
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render(tokenizer, messages[:i], add_generation_prompt=True))
        end = len(render(tokenizer, messages[: i + 1]))
        if not text.startswith(render(tokenizer, messages[: i + 1])):
            raise LmlabError("the tokenizer's chat template renders a conversation differently from its prefix; "
                             "lmlab cannot tell prompt from response tokens (set data.tokenizer to another one)")
        spans.append((start, end))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = [
        token if any(start <= offset[0] < end for start, end in spans) else IGNORE_INDEX
        for token, offset in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
    ]
    return encoded["input_ids"], labels
