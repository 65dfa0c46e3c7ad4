"""BERT's masking rule, from transformers' `DataCollatorForLanguageModeling`, with explicit seeds.

The collator implements the rule (a `mlm_probability` share of tokens is chosen; of those 80% become
<mask>, 10% a random token, 10% stay; special tokens never chosen; labels -100 elsewhere). lmlab only
feeds it a generator seeded per batch, so a masked batch depends on (seed, epoch, batch index) alone
and a resumed run masks exactly as an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import warnings

import torch
from transformers import DataCollatorForLanguageModeling

from lmlab.errors import LmlabError

# Byte-level BPE marks a leading space/newline/tab with these characters; WordPiece marks continuations with ##.
_WORD_START_MARKERS = ("Ġ", "Ċ", "ĉ", "▁")


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on `parts` (stable across processes and machines)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def word_start_table(tokenizer) -> torch.Tensor:
    """For each vocabulary id: does this token begin a word? (Used to group sub-words for whole-word masking.)"""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    wordpiece = any(t.startswith("##") for t in tokens if t)

    def starts(token: str | None) -> bool:
        if not token:
            return True
        if wordpiece:
            return not token.startswith("##")
        return token.startswith(_WORD_START_MARKERS) or not (token[0].isalnum() or token[0] == "_")

    return torch.tensor([starts(t) for t in tokens], dtype=torch.bool)


class MaskingRule:
    """Masks a batch of token ids: `(input_ids, seed) -> (masked_input_ids, labels)`."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1, whole_word_mask: bool = False):
        if tokenizer is None or tokenizer.mask_token is None:
            name = getattr(tokenizer, "name_or_path", None)
            raise LmlabError(f"tokenizer {name!r} has no mask token; a masked LM needs one (use the tokenizer lmlab "
                             "trains, model.tokenizer=null, or a BERT/RoBERTa tokenizer)")
        try:
            with warnings.catch_warnings():  # whole-word masking forces mask_replace_prob=1: documented in mlm.yaml
                warnings.simplefilter("ignore")
                self.collator = DataCollatorForLanguageModeling(
                    tokenizer, mlm_probability=mlm_probability, mask_replace_prob=mask_replace_prob,
                    random_replace_prob=random_replace_prob, whole_word_mask=whole_word_mask)
        except ValueError as e:
            raise LmlabError(f"task.module masking settings: {e}") from e
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.word_starts = word_start_table(tokenizer) if whole_word_mask else None

    def __call__(self, input_ids: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = input_ids.detach().cpu()
        special = torch.isin(ids, self.special_ids)
        self.collator.generator = torch.Generator().manual_seed(seed)
        inputs, labels = self.collator.torch_mask_tokens(ids.clone(), special_tokens_mask=special,
                                                         offset_mapping=self._word_offsets(ids, special))
        return inputs.to(input_ids.device), labels.to(input_ids.device)

    def _word_offsets(self, ids: torch.Tensor, special: torch.Tensor) -> torch.Tensor | None:
        """Character offsets with a gap exactly before each word start: what the collator reads words from.

        Packed blocks carry no offsets, so they are made up: token i spans [i + w_i, i + w_i + 1) where w_i
        counts word starts up to i; the gap to the previous token's end is then 1 at a word start, else 0.
        """
        if self.word_starts is None:
            return None
        new_word = (self.word_starts[ids] | special).long()
        start = torch.arange(ids.shape[1]) + new_word.cumsum(dim=1)
        return torch.stack([start, start + 1], dim=-1)
