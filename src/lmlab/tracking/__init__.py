"""Experiment tracking: metrics.csv, W&B, MLflow and TensorBoard loggers, each point once at its step, and the
readers of each tracker's own store (docs/tracking.md)."""
