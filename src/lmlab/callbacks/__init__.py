"""Callbacks lmlab adds to Lightning's own (checkpointing, LR monitor, progress bar)."""

from lmlab.callbacks.export import ExportHuggingFace
from lmlab.callbacks.preemption import PreemptionCheckpoint
from lmlab.callbacks.progress import ProgressBar
from lmlab.callbacks.rng_state import RNGStateCheckpoint
from lmlab.callbacks.samples import SampleContinuations
from lmlab.callbacks.speed import SpeedMonitor
from lmlab.callbacks.summary import RunSummary

__all__ = [
    "ExportHuggingFace", "PreemptionCheckpoint", "ProgressBar", "RNGStateCheckpoint", "RunSummary",
    "SampleContinuations", "SpeedMonitor",
]
