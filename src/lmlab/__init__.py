"""lmlab: Lightning + Hydra experiments for pretraining and fine-tuning language models."""

__version__ = "0.1.0"
