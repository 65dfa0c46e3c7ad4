"""`SFTDataModule`: conversations or prompt/response pairs → chat-formatted tokens with response-only labels.

Sources are the classification ones (`LocalSplits`: JSON Lines/CSV/Parquet files, `HubSplits`: a hub
dataset) or `SyntheticInstructions`. A split has a `messages` column (lists of `{role, content}`) or
`prompt` and `response` columns (names configurable; `input_column` appends e.g. Alpaca's `input` to the
prompt). Tokenized splits are cached under a fingerprint like every other task's; batches are padded to
their own longest example (labels with -100), or packed into one row without cross-example attention.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from lmlab.contracts import IGNORE_INDEX
from lmlab.data.cache import cached_dir, fingerprint
from lmlab.data.chat import conversation, encode_conversation, with_chat_template
from lmlab.data.tokenized_splits import TokenizedSplitsDataModule
from lmlab.data.tokenizer import tokenizer_fingerprint
from lmlab.errors import LmlabError

log = logging.getLogger(__name__)


class SFTDataModule(TokenizedSplitsDataModule):
    def __init__(
        self,
        source,
        messages_column: str = "messages",
        prompt_column: str = "prompt",
        response_column: str = "response",
        input_column: str | None = None,
        system_prompt: str | None = None,
        splits: tuple[str, ...] = ("train", "validation"),
        tokenizer: str | None = None,
        pretrained: str | None = None,
        init_from: str | None = None,
        vocab_size: int = 8192,
        max_length: int = 512,
        max_documents: int | None = None,
        generation_examples: int = 32,
        packing: bool = False,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str = "outputs/.cache",
    ):
        super().__init__(splits, max_documents, tokenizer or pretrained, init_from, vocab_size, batch_size,
                         eval_batch_size, num_workers, cache_dir)
        self.source = source
        self.messages_column, self.prompt_column, self.response_column = messages_column, prompt_column, response_column
        self.input_column, self.system_prompt = input_column, system_prompt
        self.max_length = max_length
        self.num_generation_examples = generation_examples
        self.packing = packing

    @property
    def columns(self) -> list[str | None]:
        return [self.messages_column, self.prompt_column, self.response_column, self.input_column]

    # --- conversations, checked ----------------------------------------------------------------------
    def raw(self, split: str):
        dataset = self.cut(self.source.load(split))
        if len(dataset) == 0:
            raise LmlabError(f"the {split} split of data.source is empty")
        return dataset

    def conversations(self, split: str) -> list[list[dict[str, str]]]:
        """Every example of `split` as a list of messages ending with the assistant's response."""
        dataset = self.raw(split)
        columns = dataset.column_names
        if self.messages_column in columns:
            return [self._checked_messages(m, split) for m in dataset[self.messages_column]]
        missing = [c for c in (self.prompt_column, self.response_column, self.input_column) if c and c not in columns]
        if missing:
            raise LmlabError(f"data.messages_column={self.messages_column!r} and data.prompt_column="
                             f"{self.prompt_column!r}/data.response_column={self.response_column!r}: the {split} "
                             f"split has neither (missing {missing}); columns: {columns}")
        prompts = dataset[self.prompt_column]
        if self.input_column:  # Alpaca: the instruction, then its input (when there is one)
            prompts = [f"{p}\n\n{i}" if i else p for p, i in zip(prompts, dataset[self.input_column], strict=True)]
        return [conversation(str(p), str(r), self.system_prompt)
                for p, r in zip(prompts, dataset[self.response_column], strict=True)]

    def _checked_messages(self, messages, split: str) -> list[dict[str, str]]:
        if not isinstance(messages, list) or not all(isinstance(m, dict) and {"role", "content"} <= m.keys()
                                                     for m in messages):
            raise LmlabError(f"data.messages_column={self.messages_column!r} of the {split} split holds "
                             f"{type(messages).__name__} values, not lists of {{role, content}}")
        if not any(m["role"] == "assistant" for m in messages):
            raise LmlabError(f"data.messages_column={self.messages_column!r}: a conversation of the {split} split "
                             "has no assistant message (nothing to learn)")
        if self.system_prompt and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system_prompt}, *messages]
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    def generation_examples(self) -> list[tuple[list[dict[str, str]], str]]:
        """(prompt messages, reference response) of the first `generation_examples` validation conversations."""
        return self._generation_examples

    @cached_property
    def _generation_examples(self) -> list[tuple[list[dict[str, str]], str]]:
        if self.num_generation_examples <= 0:
            return []
        examples = []
        for messages in self.conversations("validation")[: self.num_generation_examples]:
            last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
            examples.append((messages[:last], messages[last]["content"]))
        return examples

    # --- tokenizer -------------------------------------------------------------------------------------
    def bpe_texts(self):
        return (m["content"] for messages in self.conversations("train") for m in messages)

    def bpe_key(self) -> dict:
        return {"task": "sft", "source": self.source.fingerprint(), "columns": self.columns}

    def prepared(self, tokenizer):
        return with_chat_template(tokenizer)

    @cached_property
    def tokenizer_fingerprint(self) -> str:
        return tokenizer_fingerprint(self.tokenizer) + str(self.tokenizer.chat_template)

    # --- tokenized splits, cached ------------------------------------------------------------------------
    def encode(self, split: str) -> dict[str, list[list[int]]]:
        """Tokenized conversations, cut to `max_length`; those left without a response token are dropped."""
        rows = {"input_ids": [], "attention_mask": [], "labels": []}
        dropped = 0
        for messages in self.conversations(split):
            input_ids, labels = encode_conversation(self.tokenizer, messages)
            input_ids, labels = input_ids[: self.max_length], labels[: self.max_length]
            if all(label == IGNORE_INDEX for label in labels):
                dropped += 1
                continue
            rows["input_ids"].append(input_ids)
            rows["attention_mask"].append([1] * len(input_ids))
            rows["labels"].append(labels)
        if dropped:
            log.warning("%d %s examples have no response token within data.max_length=%d: dropped",
                        dropped, split, self.max_length)
        if not rows["input_ids"]:
            raise LmlabError(f"data.max_length={self.max_length} leaves no response token in any {split} example")
        return rows

    def _tokenized(self, split: str) -> Path:
        key = fingerprint(source=self.source.fingerprint(), split=split, tokenizer=self.tokenizer_fingerprint,
                          columns=self.columns, system_prompt=self.system_prompt, max_length=self.max_length,
                          max_documents=self.max_documents)

        def build(tmp: Path) -> None:
            import datasets

            datasets.Dataset.from_dict(self.encode(split)).save_to_disk(str(tmp))

        return cached_dir(self.cache_dir / "sft", key, build, f"tokenized {split} split")

    def collator(self):
        """Padding to the batch's longest example, or (`packing`) the batch's examples back to back in one row.

        A packed row carries `position_ids` that restart at each example and no attention mask, from which
        transformers builds a block-diagonal causal mask: no token attends across examples.
        """
        from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

        self.tokenizer.padding_side = "right"
        if self.packing:
            return DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
        return DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=IGNORE_INDEX)
