"""`PreferenceDataModule`: prompt / chosen / rejected pairs → chat-formatted token ids for DPO and reward models.

Sources are the SFT ones (`LocalSplits`, `HubSplits`) or `SyntheticPreferences`; a row's shape (strings or
messages, explicit or implicit prompt) is read by `lmlab.data.preference_rows`. Each side is formatted with the
chat template SFT uses (`lmlab.data.chat`): the prompt up to the generation prompt, then the response with its end
token. Too long a pair keeps the end of its prompt (at most `max_prompt_length` tokens) and the start of each
response. Pairs whose chosen equals rejected teach nothing: dropped, with a count; all of them is an error.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from lmlab.data.cache import cached_dir, fingerprint
from lmlab.data.chat import render, with_chat_template
from lmlab.data.preference_batch import REFERENCE_COLUMNS, PreferenceCollator
from lmlab.data.preference_rows import Messages, preference_pair
from lmlab.data.tokenized_splits import TokenizedSplitsDataModule
from lmlab.data.tokenizer import tokenizer_fingerprint
from lmlab.errors import LmlabError

log = logging.getLogger(__name__)


class PreferenceDataModule(TokenizedSplitsDataModule):
    def __init__(
        self,
        source,
        prompt_column: str | None = "prompt",
        chosen_column: str = "chosen",
        rejected_column: str = "rejected",
        margin_column: str | None = None,
        system_prompt: str | None = None,
        splits: tuple[str, ...] = ("train", "validation"),
        tokenizer: str | None = None,
        pretrained: str | None = None,
        init_from: str | None = None,
        vocab_size: int = 8192,
        max_length: int = 512,
        max_prompt_length: int | None = None,
        max_documents: int | None = None,
        generation_examples: int = 32,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str = "outputs/.cache",
    ):
        super().__init__(splits, max_documents, tokenizer or pretrained, init_from, vocab_size, batch_size,
                         eval_batch_size, num_workers, cache_dir)
        self.source = source
        self.prompt_column, self.chosen_column, self.rejected_column = prompt_column, chosen_column, rejected_column
        self.margin_column, self.system_prompt = margin_column, system_prompt
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length or max_length // 2
        self.num_generation_examples = generation_examples

    @property
    def columns(self) -> list[str | None]:
        return [self.prompt_column, self.chosen_column, self.rejected_column, self.margin_column]

    # --- pairs, checked --------------------------------------------------------------------------------
    def pairs(self, split: str) -> list[tuple[Messages, Messages, Messages, float | None]]:
        """(prompt, chosen, rejected messages, margin) of every row of `split`."""
        dataset = self.cut(self.source.load(split))
        if len(dataset) == 0:
            raise LmlabError(f"the {split} split of data.source is empty")
        columns = dataset.column_names
        wanted = {"data.chosen_column": self.chosen_column, "data.rejected_column": self.rejected_column,
                  "data.margin_column": self.margin_column}
        missing = [f"{key}={name!r}" for key, name in wanted.items() if name and name not in columns]
        if missing:
            raise LmlabError(f"the {split} split of data.source has no column {', '.join(missing)}; "
                             f"its columns: {columns}")
        prompts = dataset[self.prompt_column] if self.prompt_column in columns else [None] * len(dataset)
        margins = dataset[self.margin_column] if self.margin_column else [None] * len(dataset)
        where = f"the {split} split of data.source"
        return [(*preference_pair(p, c, r, self.system_prompt, where), m) for p, c, r, m in
                zip(prompts, dataset[self.chosen_column], dataset[self.rejected_column], margins, strict=True)]

    def generation_examples(self) -> list[tuple[Messages, str]]:
        """(prompt messages, chosen response) of the first `generation_examples` validation pairs."""
        return self._generation_examples

    @cached_property
    def _generation_examples(self) -> list[tuple[Messages, str]]:
        if self.num_generation_examples <= 0:
            return []
        return [(prompt, chosen[-1]["content"]) for prompt, chosen, _, _ in
                self.pairs("validation")[: self.num_generation_examples]]

    # --- tokenizer -------------------------------------------------------------------------------------
    def bpe_texts(self):
        return (m["content"] for pair in self.pairs("train") for messages in pair[:3] for m in messages)

    def bpe_key(self) -> dict:
        return {"task": "preference", "source": self.source.fingerprint(), "columns": self.columns}

    def prepared(self, tokenizer):
        return with_chat_template(tokenizer)

    @cached_property
    def tokenizer_fingerprint(self) -> str:
        return tokenizer_fingerprint(self.tokenizer) + str(self.tokenizer.chat_template)

    # --- tokenized splits, cached ------------------------------------------------------------------------
    def token_ids(self, prompt: Messages, response: Messages) -> tuple[list[int], list[int]]:
        """Ids of the prompt (up to the generation prompt) and of the response that follows it (with its end)."""
        prompt_text = render(self.tokenizer, prompt, add_generation_prompt=True) if prompt else ""
        full = render(self.tokenizer, [*prompt, *response])
        if not full.startswith(prompt_text):
            raise LmlabError("the tokenizer's chat template renders a conversation differently from its prompt; "
                             "lmlab cannot tell prompt from response tokens (set data.tokenizer to another one)")
        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        return encode(prompt_text), encode(full[len(prompt_text):])

    def truncated(self, prompt: list[int], chosen: list[int], rejected: list[int]) \
            -> tuple[list[int], list[int], list[int]]:
        """Cut to `max_length`: the prompt's end first (to `max_prompt_length`), then the start of each response."""
        longest = max(len(chosen), len(rejected))
        if len(prompt) + longest > self.max_length:
            prompt = prompt[-self.max_prompt_length:]
        room = self.max_length - len(prompt)
        return prompt, chosen[:room], rejected[:room]

    def encode(self, split: str) -> dict[str, list]:
        """Token ids of every pair; pairs whose chosen and rejected ids are equal (after cutting) are dropped."""
        rows: dict[str, list] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": []}
        if self.margin_column:
            rows["margin"] = []
        pairs = self.pairs(split)
        for prompt, chosen, rejected, margin in pairs:
            prompt_ids, chosen_ids = self.token_ids(prompt, chosen)
            rejected_ids = self.token_ids(prompt, rejected)[1]
            prompt_ids, chosen_ids, rejected_ids = self.truncated(prompt_ids, chosen_ids, rejected_ids)
            if chosen_ids == rejected_ids:
                continue
            rows["prompt_ids"].append(prompt_ids)
            rows["chosen_ids"].append(chosen_ids)
            rows["rejected_ids"].append(rejected_ids)
            if self.margin_column:
                rows["margin"].append(float(margin))
        dropped = len(pairs) - len(rows["prompt_ids"])
        if dropped == len(pairs):
            raise LmlabError(f"every pair of the {split} split of data.source has chosen equal to rejected (within "
                             f"data.max_length={self.max_length} tokens): nothing to prefer; check "
                             f"data.chosen_column={self.chosen_column!r} and data.rejected_column="
                             f"{self.rejected_column!r}")
        if dropped:
            log.warning("%d of %d %s pairs have chosen equal to rejected (within data.max_length=%d tokens): dropped",
                        dropped, len(pairs), split, self.max_length)
        return rows

    def split_key(self, split: str) -> str:
        """The cache key of `split`'s tokenized pairs: everything they depend on."""
        return fingerprint(source=self.source.fingerprint(), split=split, tokenizer=self.tokenizer_fingerprint,
                           columns=self.columns, system_prompt=self.system_prompt, max_length=self.max_length,
                           max_prompt_length=self.max_prompt_length, max_documents=self.max_documents)

    def _tokenized(self, split: str) -> Path:
        def build(tmp: Path) -> None:
            import datasets

            datasets.Dataset.from_dict(self.encode(split)).save_to_disk(str(tmp))

        return cached_dir(self.cache_dir / "preference", self.split_key(split), build, f"tokenized {split} pairs")

    def add_reference_logps(self, split: str, chosen: list[float], rejected: list[float]) -> None:
        """The reference's log-probability of each pair's chosen and rejected response, in the split's row order:
        its batches then carry them (`REFERENCE_COLUMNS`) and DPO runs no reference model."""
        self.setup()
        dataset = self.datasets[split]
        if not len(chosen) == len(rejected) == len(dataset):
            raise ValueError(f"{len(chosen)} and {len(rejected)} reference log-probabilities for the "
                             f"{len(dataset)} {split} pairs")
        dataset = dataset.remove_columns([c for c in REFERENCE_COLUMNS if c in dataset.column_names])
        for column, values in zip(REFERENCE_COLUMNS, (chosen, rejected), strict=True):
            dataset = dataset.add_column(column, values)
        self.datasets[split] = dataset

    def collator(self) -> PreferenceCollator:
        pad = self.tokenizer.pad_token_id
        return PreferenceCollator(self.tokenizer.eos_token_id if pad is None else pad)
