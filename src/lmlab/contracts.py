"""What data sources, data modules and task modules promise each other.

`lmlab-train` builds `cfg.data` (a `DataModule`), then `cfg.task.module` (a `TaskModule`) with the data
module's tokenizer and `module_kwargs()`; Lightning then feeds the module the data module's batches, dicts
holding at least the task's `batch_keys`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

IGNORE_INDEX = -100  # the label of a token that carries no loss (prompt, padding, unmasked): Hugging Face's value


class TextSource(Protocol):
    """Pretraining text (`data.source` of `PretrainDataModule`): documents per split, and a fingerprint of
    their content that keys the token cache."""

    def fingerprint(self) -> str: ...

    def documents(self, split: str) -> Iterator[Any]: ...


class ExampleSource(Protocol):
    """Labelled examples or conversations (`data.source` of classification and SFT): a `datasets.Dataset` per
    split, and a fingerprint of their content that keys the tokenized cache."""

    def fingerprint(self) -> str: ...

    def load(self, split: str) -> Any: ...


class DataModule(Protocol):
    """What every lmlab data module (a `LightningDataModule`) provides beyond Lightning's loaders."""

    batch_size: int  # per device: the global batch is batch_size x accumulation x processes
    max_documents: int | None  # the quick-run cut, set by debug=fast

    @property
    def tokenizer(self) -> Any: ...

    def module_kwargs(self) -> dict[str, Any]:
        """What the task module needs from the data beyond the tokenizer (a classifier's label names)."""
        ...


class TaskModule(Protocol):
    """What an objective's LightningModule declares (see `lmlab.modules.base.HFModelModule`)."""

    auto_class: ClassVar[Any]  # the transformers Auto class its model is built or loaded with
    peft_task_type: ClassVar[str | None]  # peft's TaskType for LoRA on it; None: peft is refused
    batch_keys: ClassVar[tuple[str, ...]]  # what its steps read from a batch
