"""Classification metrics from torchmetrics: the same definitions for training, validation and `lmlab-eval`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassMatthewsCorrCoef,
    MulticlassPrecision,
    MulticlassRecall,
)


def classification_metrics(num_labels: int, prefix: str, sync_on_step: bool = False) -> MetricCollection:
    """Accuracy, macro F1 and Matthews correlation; a binary task is the 2-class case (same values).

    `sync_on_step`: each step's value is over every process's examples (a training step's, logged per step),
    not the logging rank's alone; evaluation metrics sync once, when computed over the whole split."""
    options = {"num_classes": num_labels, "dist_sync_on_step": sync_on_step}
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(average="micro", **options),
            "f1_macro": MulticlassF1Score(average="macro", **options),
            "mcc": MulticlassMatthewsCorrCoef(**options),
        },
        prefix=prefix,
    )


def per_class_f1(num_labels: int) -> MulticlassF1Score:
    """F1 of each class (no averaging): a rare class that is never predicted shows as 0, not hidden in accuracy."""
    return MulticlassF1Score(num_classes=num_labels, average=None)


def per_class_report(preds: Tensor, target: Tensor, labels: list[str]) -> dict:
    """Precision, recall, F1 and support of each class by name, and the confusion matrix (rows: true label,
    columns: prediction), all from torchmetrics."""
    k = len(labels)
    scores = MetricCollection({
        "precision": MulticlassPrecision(num_classes=k, average=None),
        "recall": MulticlassRecall(num_classes=k, average=None),
        "f1": MulticlassF1Score(num_classes=k, average=None),
    })(preds, target)
    confusion = MulticlassConfusionMatrix(num_classes=k)(preds, target)
    support = confusion.sum(dim=1)
    per_class = {name: {**{key: float(value[i]) for key, value in scores.items()}, "support": int(support[i])}
                 for i, name in enumerate(labels)}
    return {"per_class": per_class, "confusion_matrix": {"labels": list(labels), "matrix": confusion.tolist()}}


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """The confusion matrix as a PNG (torchmetrics' own plot: counts in the cells, names on the axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.utilities.plot import plot_confusion_matrix as tm_plot

    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    tm_plot(torch.tensor(matrix), ax=ax, labels=list(labels))
    ax.set_title(title)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
