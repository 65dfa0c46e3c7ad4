"""What the console shows: lmlab's own lines once each, without third-party noise.

Hydra's handlers print every log record (and write train.log); Lightning adds its own console handler,
which would print its lines a second time. Progress bars of `datasets` and `transformers` are redrawn
frames, useless (and garbled) in a batch job's log. transformers 5 prints a "LOAD REPORT" warning whenever a
classification head starts fresh, which is the point of fine-tuning, not a problem. Under DDP Lightning
recommends `sync_dist=True` for every epoch-level metric, also for those torchmetrics already reduced
across processes (lmlab's validation metrics), once per metric.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

# Sequence-classification heads that from_pretrained initialises fresh (BERT, DistilBERT, RoBERTa, GPT-2, Llama)
FRESH_HEAD = re.compile(r"(^|\.)(classifier|score|pre_classifier|pooler)\.")
# Pretraining heads that a classifier leaves out when it loads a CLM or MLM body
DROPPED_HEAD = re.compile(r"(^|\.)(lm_head|cls|predictions|vocab_\w+)\.")


class FreshHeadReport(logging.Filter):
    """Drops transformers' load report when all it lists is a fresh classification head (MISSING) and an
    unused pretraining head (UNEXPECTED); a report naming any other weight is kept, since that one matters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        rows = [[cell.strip() for cell in line.split("|")] for line in message.splitlines() if "|" in line]
        rows = [(row[0], row[1]) for row in rows if len(row) > 1 and row[1] in ("MISSING", "UNEXPECTED")]
        expected = [FRESH_HEAD.search(key) if status == "MISSING" else DROPPED_HEAD.search(key) for key, status in rows]
        return not (rows and all(expected))


def _not_an_enum_registration(record: logging.LogRecord) -> bool:
    # transformers imports torchao wherever it is installed (model.fp8 needs it); torchao's enum registrations
    # warn under torch >= 2.12, on every launch and before every one-line error.
    return "is an Enum subclass" not in record.getMessage()


# Lightning's lines that say nothing a user can act on: an advertisement, hardware lmlab does not use, lmlab's
# own summary callback replacing Lightning's, and (on every resume) its wish that checkpoints go elsewhere.
LIGHTNING_NOISE = ("💡 Tip", "TPU available", "HPU available", "Trainer already configured with model summary",
                   "exists and is not empty")


def _not_lightning_noise(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(noise in message for noise in LIGHTNING_NOISE)


def quiet_warnings() -> None:
    """Deprecation chatter from inside torchdata, torchao and Lightning, not actionable by users; called before
    anything imports them (idempotent)."""
    warnings.filterwarnings("ignore", message="'set_vital' is deprecated")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # Lightning's resume under weights_only=False (lmlab's checkpoints hold RNG states: it is lmlab's choice)
    warnings.filterwarnings("ignore", message=r".*weights_only")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    logging.getLogger("torch.utils._pytree").addFilter(_not_an_enum_registration)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_lightning_noise)
    # torchao (imported by transformers wherever installed): its kernels missing on this machine (no Triton, no
    # CUDA build) matter only to model.fp8, which fails with its own error
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna's database migrations, when a search starts


def quiet_third_party() -> None:
    """Called once at the start of `lmlab-train` and `lmlab-eval` (idempotent)."""
    import transformers

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\(.*sync_dist=True\)")
    model_logger = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, FreshHeadReport) for f in model_logger.filters):
        model_logger.addFilter(FreshHeadReport())
    if not sys.stdout.isatty():
        transformers.utils.logging.disable_progress_bar()
        try:  # training from lmlab's token cache needs no `datasets` (GPU images often lack it)
            import datasets
        except ImportError:
            return
        datasets.disable_progress_bars()


class RankPrefix(logging.Filter):
    """Under DDP/FSDP every process writes to the same console: each of its lines says whose it is (`[rank 1] `).
    Installed on the root logger's handlers; the first handler that sees a record prefixes it, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "lmlab_rank_prefixed", False):
            record.lmlab_rank_prefixed = True
            if (rank := process_rank()) is not None:
                record.msg = f"[rank {rank}] {record.msg}"
        return True


def process_rank() -> int | None:
    """This process's global rank when several processes train together; None when it trains alone."""
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() if dist.get_world_size() > 1 else None
    if int(os.environ.get("WORLD_SIZE") or 1) <= 1:  # set by torchrun and by Lightning's launcher (every rank)
        return None
    if "RANK" in os.environ:  # torchrun
        return int(os.environ["RANK"])
    return int(os.environ.get("SLURM_PROCID") or os.environ.get("LOCAL_RANK") or 0)


def prefix_ranks() -> None:
    """Install `RankPrefix` on every handler of the root logger (idempotent; called as a launch begins and
    once it trains, when train.log's handler is attached)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RankPrefix) for f in handler.filters):
            handler.addFilter(RankPrefix())
