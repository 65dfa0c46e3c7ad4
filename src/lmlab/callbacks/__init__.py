"""Callbacks lmlab adds to Lightning's own (checkpointing, LR monitor, progress bar)."""

from lmlab.callbacks.export import ExportHuggingFace
from lmlab.callbacks.preemption import PreemptionCheckpoint
from lmlab.callbacks.rng_state import RNGStateCheckpoint
from lmlab.callbacks.samples import SampleContinuations
from lmlab.callbacks.speed import SpeedMonitor

__all__ = ["ExportHuggingFace", "PreemptionCheckpoint", "RNGStateCheckpoint", "SampleContinuations", "SpeedMonitor"]
