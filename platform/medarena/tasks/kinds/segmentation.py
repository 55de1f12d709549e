"""Segmentation: logits ``(n, C, *spatial)`` -> label maps by argmax; per-case metrics in mm."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.metrics import SegmentationConventions, aggregate, case_scores
from medarena.tasks.kinds._base import FloatArray, Reference


def foreground_labels(reference: Reference) -> list[int]:
    """The labels scored: every non-zero label of the task (0 is background)."""
    return [int(v) for v in np.unique(reference.labels) if v != 0]


def segmentation_values(
    predictions: npt.NDArray[np.integer],
    reference: Reference,
    *,
    labels: list[int],
    conventions: SegmentationConventions | None = None,
) -> dict[str, FloatArray]:
    """Per-case, per-label values of every segmentation metric: ``{name: (n_cases, n_labels)}``."""
    rows = [
        case_scores(
            reference.labels[i],
            predictions[i],
            labels=labels,
            spacing=reference.spacing[i],
            conventions=conventions,
        )
        for i in range(len(reference))
    ]
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


class Segmentation:
    name = "segmentation"
    contract = "logits of shape (batch, num_classes, *spatial) at the input's resolution"

    def targets(self, reference: Reference, *, image_shape: tuple[int, ...]) -> npt.NDArray[Any]:
        return reference.labels.astype(np.int64)

    def output_channels(self, num_classes: int) -> int:
        return num_classes

    def logits_shape(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> tuple[int, ...]:
        return (n, num_classes, *input_shape[1:])

    def decode(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> npt.NDArray[np.uint8]:
        return np.asarray(logits.argmax(axis=1).astype(np.uint8))

    def concat(
        self, parts: list[npt.NDArray[np.uint8]], *, offsets: list[int]
    ) -> npt.NDArray[np.uint8]:
        return np.concatenate(parts)

    def validation_scores(
        self, predictions: npt.NDArray[np.integer], reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        values = segmentation_values(predictions, reference, labels=foreground_labels(reference))
        return {name: aggregate(values[name]) for name in metrics}


SEGMENTATION = Segmentation()
