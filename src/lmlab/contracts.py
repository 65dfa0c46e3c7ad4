"""What data sources, data modules and task modules promise each other.

`lmlab-train` builds `cfg.data` (a `DataModule`), then `cfg.task.module` (a `TaskModule`) with the data
module's tokenizer and `module_kwargs()`; Lightning then feeds the module the data module's batches, dicts
holding at least the task's `batch_keys`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

IGNORE_INDEX = -100  # the label of a token that carries no loss (prompt, padding, unmasked): Hugging Face's value


class Source(Protocol):
    """What every data source (`data.source`) provides. A source class subclasses `TextSource` or `ExampleSource`
    explicitly, inheriting the defaults of the members it has nothing to say about."""

    def fingerprint(self) -> str:
        """A fingerprint of the source's content: the key of everything cached from it."""
        ...

    def check_text(self) -> None:
        """Fail now on content that would fail deep inside data preparation (undecodable text, an empty
        corpus); `lmlab-train` calls it before Lightning loads. Nothing to check by default."""


class TextSource(Source, Protocol):
    """Pretraining text (`data.source` of `PretrainDataModule`): documents per split."""

    def documents(self, split: str) -> Iterator[Any]: ...

    def size_hint(self, split: str) -> int | None:
        """About the characters of a split, for the progress display's ETA; None (the default): unknown."""
        return None

    def more_text(self, split: str, key: str) -> str:
        """How to give `split` more text, naming this source's keys under `key` (`data.source`), for the error
        when a split is shorter than one block; by default: more text."""
        return f"give {key} more text"


class ExampleSource(Source, Protocol):
    """Labelled examples or conversations (`data.source` of classification and SFT): a `datasets.Dataset` per
    split."""

    def load(self, split: str) -> Any: ...

    def label_names(self) -> list[str] | None:
        """The label names in id order, where the source defines them; None (the default): read from the splits."""
        return None


class DataModule(Protocol):
    """What every lmlab data module (a `LightningDataModule` that subclasses this explicitly) provides beyond
    Lightning's loaders."""

    batch_size: int  # per device: the global batch is batch_size x accumulation x processes
    max_documents: int | None  # the quick-run cut, set by debug=fast

    @property
    def tokenizer(self) -> Any: ...

    def module_kwargs(self) -> dict[str, Any]:
        """What the task module needs from the data beyond the tokenizer (a classifier's label names); nothing
        by default."""
        return {}

    def generation_examples(self) -> list[tuple[list[dict[str, str]], str]]:
        """(prompt messages, reference response) pairs a task scores its greedy answers on (SFT's exact match);
        none by default."""
        return []


class TaskModule(Protocol):
    """What an objective's LightningModule declares (see `lmlab.modules.base.HFModelModule`)."""

    auto_class: ClassVar[Any]  # the transformers Auto class its model is built or loaded with
    peft_task_type: ClassVar[str | None]  # peft's TaskType for LoRA on it; None: peft is refused
    batch_keys: ClassVar[tuple[str, ...]]  # what its steps read from a batch
    tokenizer: Any | None  # the data module's tokenizer; None in a module built without one (from hparams alone)

    def networks(self) -> list[Any]:
        """Every network a training step runs: the trained model first, then any frozen one beside it (DPO's
        reference). `trainer=fsdp` shards each of them per block."""
        ...
