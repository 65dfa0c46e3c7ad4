"""Callbacks lmlab adds to Lightning's own (last checkpoint, progress, speed, samples, export); those that put
state into checkpoints are `lmlab.checkpoint`'s (`lmlab.checkpoint.state`)."""

from lmlab.callbacks.downstream_eval import DownstreamEval
from lmlab.callbacks.export import ExportHuggingFace
from lmlab.callbacks.last_checkpoint import LastCheckpoint
from lmlab.callbacks.model_summary import ModelSummary
from lmlab.callbacks.progress import ProgressBar
from lmlab.callbacks.samples import SampleContinuations
from lmlab.callbacks.speed import SpeedMonitor
from lmlab.callbacks.summary import RunSummary
from lmlab.callbacks.text_progress import TextProgress, progress_bar

__all__ = [
    "DownstreamEval", "ExportHuggingFace", "LastCheckpoint",
    "ModelSummary", "ProgressBar",
    "RunSummary",
    "SampleContinuations", "SpeedMonitor", "TextProgress", "progress_bar",
]
