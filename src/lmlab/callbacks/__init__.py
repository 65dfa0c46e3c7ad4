"""Callbacks lmlab adds to Lightning's own (checkpointing, LR monitor, progress bar)."""

from lmlab.callbacks.export import ExportHuggingFace
from lmlab.callbacks.last_checkpoint import LastCheckpoint
from lmlab.callbacks.model_summary import ModelSummary
from lmlab.callbacks.optuna_pruning import OptunaPruning
from lmlab.callbacks.preemption import PreemptionCheckpoint
from lmlab.callbacks.progress import ProgressBar
from lmlab.callbacks.rng_state import RNGStateCheckpoint
from lmlab.callbacks.samples import SampleContinuations
from lmlab.callbacks.speed import SpeedMonitor
from lmlab.callbacks.summary import RunSummary
from lmlab.callbacks.text_progress import TextProgress, progress_bar

__all__ = [
    "ExportHuggingFace", "LastCheckpoint", "ModelSummary", "OptunaPruning", "PreemptionCheckpoint", "ProgressBar",
    "RNGStateCheckpoint", "RunSummary",
    "SampleContinuations", "SpeedMonitor", "TextProgress", "progress_bar",
]
