"""Callbacks lmlab adds to Lightning's own (last checkpoint, progress, speed, samples, export); those that put
state into checkpoints are `lmlab.checkpoint`'s (`lmlab.checkpoint.state`).

Names are imported on first use: the callbacks' config checks (`lmlab.callbacks.config_checks`) run before
training and must not pull in Lightning.
"""

from lmlab.utils.lazy_names import lazy_names

_CALLBACKS = {
    "DownstreamEval": "downstream_eval", "ExportHuggingFace": "export", "LastCheckpoint": "last_checkpoint",
    "ModelSummary": "model_summary", "ProgressBar": "progress", "RunSummary": "summary",
    "SampleContinuations": "samples", "SpeedMonitor": "speed", "TextProgress": "text_progress",
    "progress_bar": "text_progress",
}
__all__ = sorted(_CALLBACKS)

__getattr__ = lazy_names(__name__, _CALLBACKS)
