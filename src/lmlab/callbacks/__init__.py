"""Callbacks lmlab adds to Lightning's own (checkpointing, LR monitor, progress bar)."""

from lmlab.callbacks.export import ExportHuggingFace
from lmlab.callbacks.progress import ProgressBar
from lmlab.callbacks.samples import SampleContinuations
from lmlab.callbacks.speed import SpeedMonitor
from lmlab.callbacks.summary import RunSummary

__all__ = ["ExportHuggingFace", "ProgressBar", "RunSummary", "SampleContinuations", "SpeedMonitor"]
