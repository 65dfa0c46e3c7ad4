"""Tokenizers: a pretrained one by hub name or directory, or a byte-level BPE trained on the corpus."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from lmlab.data.cutting import Document, document_pieces
from lmlab.data.progress import DataProgress
from lmlab.errors import LmlabError, not_loadable

log = logging.getLogger(__name__)

# RoBERTa-style specials: one trained tokenizer serves causal LMs (</s> separates documents) and masked
# LMs (<mask>, <pad>, <s> as CLS) alike, so both objectives share one tokenized cache.
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "cls_token": "<s>",
    "sep_token": "</s>",
}
BPE_VERSION = "bytelevel-bpe-1"  # bump when train_bpe changes, to invalidate cached tokenizers


def train_bpe(documents: Iterable[Document], vocab_size: int, max_chars: int | None = None,
              size_hint: int | None = None):
    """Train a byte-level BPE (GPT-2 style pre-tokenization) with the Rust `tokenizers` trainer, showing
    the characters read (of `size_hint`, capped at `max_chars`) while it counts words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(SPECIAL_TOKENS.values()))
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    total = min(max_chars, size_hint) if max_chars and size_hint else max_chars or size_hint
    with DataProgress("Training BPE: reading text", total, rate_unit="characters") as progress:
        tokenizer.train_from_iterator(_limit_chars(documents, max_chars, progress), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def _limit_chars(documents: Iterable[Document], max_chars: int | None, progress: DataProgress) -> Iterable[str]:
    """The texts to train on: whole documents, a streamed one in pieces cut at lines (the byte-level
    pre-tokenizer's boundaries, so its word counts are unchanged), until `max_chars` have been given."""
    seen = 0
    try:
        for doc in documents:
            for text in [doc] if isinstance(doc, str) else document_pieces(doc, 1 << 20, cuttable=True):
                if max_chars is not None and seen >= max_chars:
                    return
                seen += len(text)
                progress.advance(len(text), len(text))
                yield text
    finally:
        log.info("Read %d characters for the BPE; computing its merges", seen)


def load_pretrained_tokenizer(name_or_path: str):
    """`AutoTokenizer.from_pretrained` with a one-line error when the name is neither a directory nor on the hub."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise not_loadable("tokenizer", name_or_path, e) from e
    if not tokenizer.is_fast:
        raise LmlabError(f"tokenizer {name_or_path!r} has no fast (Rust) implementation; lmlab needs one")
    if tokenizer.pad_token is None:  # GPT-2 style tokenizers: pad with EOS (padding is masked out anyway)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer's full Rust definition (vocab, merges, normalizers, specials)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]


def special_token_ids(tokenizer) -> dict[str, int | None]:
    """Token ids a model config needs so generation and padding agree with the tokenizer."""
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }

