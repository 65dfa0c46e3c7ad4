"""Callbacks lmlab adds to Lightning's own (last checkpoint, progress, speed, samples, export); those that put
state into checkpoints are `lmlab.checkpoint`'s (`lmlab.checkpoint.state`).

Names are imported on first use: the callbacks' config checks (`lmlab.callbacks.config_checks`) run before
training and must not pull in Lightning.
"""

from importlib import import_module

_CALLBACKS = {
    "DownstreamEval": "downstream_eval", "ExportHuggingFace": "export", "LastCheckpoint": "last_checkpoint",
    "ModelSummary": "model_summary", "ProgressBar": "progress", "RunSummary": "summary",
    "SampleContinuations": "samples", "SpeedMonitor": "speed", "TextProgress": "text_progress",
    "progress_bar": "text_progress",
}
__all__ = sorted(_CALLBACKS)


def __getattr__(name: str) -> object:
    if name not in _CALLBACKS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_CALLBACKS[name]}"), name)
