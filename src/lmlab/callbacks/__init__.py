"""Callbacks lmlab adds to Lightning's own (checkpointing, LR monitor, progress bar)."""

from lmlab.callbacks.downstream_eval import DownstreamEval
from lmlab.callbacks.export import ExportHuggingFace
from lmlab.callbacks.last_checkpoint import LastCheckpoint
from lmlab.callbacks.mixture_tokens import MixtureTokens
from lmlab.callbacks.model_summary import ModelSummary
from lmlab.callbacks.optuna_pruning import OptunaPruning
from lmlab.callbacks.preemption import PreemptionCheckpoint
from lmlab.callbacks.progress import ProgressBar
from lmlab.callbacks.rng_state import RNGStateCheckpoint
from lmlab.callbacks.run_description import RunDescription
from lmlab.callbacks.samples import SampleContinuations
from lmlab.callbacks.speed import SpeedMonitor
from lmlab.callbacks.summary import RunSummary
from lmlab.callbacks.text_progress import TextProgress, progress_bar

__all__ = [
    "DownstreamEval", "ExportHuggingFace", "LastCheckpoint", "MixtureTokens",
    "ModelSummary", "OptunaPruning", "PreemptionCheckpoint", "ProgressBar", "RNGStateCheckpoint",
    "RunDescription", "RunSummary",
    "SampleContinuations", "SpeedMonitor", "TextProgress", "progress_bar",
]
