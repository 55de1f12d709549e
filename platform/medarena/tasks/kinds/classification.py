"""Classification: logits ``(n, C)`` -> softmax probabilities; metrics over all cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.metrics import get_metric
from medarena.tasks.kinds._base import FloatArray, Reference


class Classification:
    name = "classification"
    contract = "logits of shape (batch, num_classes)"

    def targets(self, reference: Reference, *, image_shape: tuple[int, ...]) -> npt.NDArray[Any]:
        return reference.labels.astype(np.int64)

    def output_channels(self, num_classes: int) -> int:
        return num_classes

    def logits_shape(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> tuple[int, ...]:
        return (n, num_classes)

    def decode(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> FloatArray:
        z = logits.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def concat(self, parts: list[FloatArray], *, offsets: list[int]) -> FloatArray:
        return np.concatenate(parts)

    def validation_scores(
        self, predictions: FloatArray, reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        return {name: get_metric(name).compute(reference.labels, predictions) for name in metrics}


CLASSIFICATION = Classification()
