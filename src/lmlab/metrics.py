"""Classification metrics from torchmetrics: the same definitions for training, validation and `lmlab-eval`."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassMatthewsCorrCoef


def classification_metrics(num_labels: int, prefix: str) -> MetricCollection:
    """Accuracy, macro F1 and Matthews correlation; a binary task is the 2-class case (same values)."""
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes=num_labels, average="micro"),
            "f1_macro": MulticlassF1Score(num_classes=num_labels, average="macro"),
            "mcc": MulticlassMatthewsCorrCoef(num_classes=num_labels),
        },
        prefix=prefix,
    )
