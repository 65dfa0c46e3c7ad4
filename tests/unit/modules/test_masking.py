"""BERT's masking rule as lmlab applies it: proportions, special tokens, labels, seeds, whole words."""

from __future__ import annotations

import pytest
import torch

from lmlab.config import minilm_path
from lmlab.errors import LmlabError
from lmlab.modules.masking import MaskingRule


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())  # WordPiece with [CLS] [SEP] [PAD] [MASK], offline


def batch_with_specials(tokenizer, rows: int = 256, length: int = 128) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, len(tokenizer), (rows, length), generator=generator)
    ids[:, 0] = tokenizer.cls_token_id
    ids[:, 60] = tokenizer.sep_token_id
    ids[:, -20:] = tokenizer.pad_token_id
    return ids


def test_masking_proportions_specials_and_labels(tokenizer):
    ids = batch_with_specials(tokenizer)
    inputs, labels = MaskingRule(tokenizer)(ids, seed=1)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    chosen = labels != -100
    # labels hold the original token exactly where a token was chosen, -100 everywhere else
    assert torch.equal(labels[chosen], ids[chosen])
    assert not chosen[special].any(), "special and padding tokens are never chosen"
    assert torch.equal(inputs[special], ids[special])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    share = chosen.sum() / (~special).sum()
    assert abs(share - 0.15) < 0.01
    to_mask = (inputs[chosen] == tokenizer.mask_token_id).float().mean()
    kept = (inputs[chosen] == ids[chosen]).float().mean()
    assert abs(to_mask - 0.8) < 0.02
    assert abs(kept - 0.1) < 0.02
    assert abs(1 - to_mask - kept - 0.1) < 0.02  # the rest: random tokens


def test_masks_depend_only_on_the_seed(tokenizer):
    ids = batch_with_specials(tokenizer, rows=8)
    rule = MaskingRule(tokenizer)
    first, second, other = rule(ids, seed=7), rule(ids, seed=7), rule(ids, seed=8)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[1], other[1])


def test_whole_word_masking_masks_every_piece_of_a_word(tokenizer):
    text = " ".join(["unbelievably tokenization internationalisation"] * 40)
    ids = torch.tensor([tokenizer(text)["input_ids"][:200]] * 16)
    inputs, labels = MaskingRule(tokenizer, mlm_probability=0.3, whole_word_mask=True)(ids, seed=3)
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    chosen = labels != -100
    assert chosen.any()
    for row in range(ids.shape[0]):
        for i in range(1, ids.shape[1]):
            if tokens[i].startswith("##"):  # a continuation piece shares its word's fate
                assert chosen[row, i] == chosen[row, i - 1]
    assert (inputs[chosen] == tokenizer.mask_token_id).all()  # transformers: no random/kept with whole words


def test_a_tokenizer_without_mask_token_is_a_clear_error(tokenizer):
    from transformers import PreTrainedTokenizerFast

    no_mask = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(LmlabError, match="no mask token"):
        MaskingRule(no_mask)
