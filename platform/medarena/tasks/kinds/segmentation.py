"""Segmentation: logits ``(n, C, *spatial)`` -> label maps by argmax; per-case metrics in mm."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from medarena.metrics import (
    SegmentationConventions,
    aggregate,
    aggregate_resampled,
    available_metrics,
    bootstrap_indices,
    case_scores,
    percentile_interval,
)
from medarena.tasks.kinds._base import FloatArray, Reference
from medarena.tasks.kinds._labels import ClassLabelKind
from medarena.tasks.kinds._scores import MetricValue, Scores

LabelMaps = npt.NDArray[np.integer]
Spacing = Sequence[float] | npt.NDArray[np.floating]
"""Voxel spacing in millimetres, in array axis order."""
Values = dict[str, FloatArray]
"""Per-case, per-label values of every segmentation metric: ``{name: (n_cases, n_labels)}``."""


class Segmentation(ClassLabelKind[npt.NDArray[np.uint8], SegmentationConventions]):
    name = "segmentation"
    contract = "logits of shape (batch, num_classes, *spatial) at the input's resolution"
    conventions_type = SegmentationConventions

    label_what = "label value"
    label_where = "no label map contains it"
    label_background = True

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
        self, predictions: LabelMaps, reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        values = self.values(predictions, reference, labels=self.labels(reference.labels))
        return {name: aggregate(values[name]) for name in metrics}

    # Scoring, and its pieces

    def score(
        self,
        predictions: LabelMaps,
        reference: Reference,
        *,
        conventions: SegmentationConventions | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> Scores:
        conv = self.resolve(conventions)
        labels = self.labels(reference.labels)
        values = self.values(predictions, reference, labels=labels, conventions=conv)
        return Scores(
            self.aggregates(values, conventions=conv, n_bootstrap=n_bootstrap, seed=seed),
            self.per_case(values),
        )

    def labels(self, label_maps: Iterable[LabelMaps]) -> list[int]:
        """The labels scored: every non-zero label of the reference maps (0 is background)."""
        return sorted({int(v) for m in label_maps for v in np.unique(m)} - {0})

    def metric_names(self) -> list[str]:
        """The segmentation metrics, by name."""
        return [info.name for info in available_metrics("segmentation")]

    def case_values(
        self,
        reference: LabelMaps,
        prediction: LabelMaps,
        *,
        labels: list[int],
        spacing: Spacing | None,
        conventions: SegmentationConventions | None = None,
    ) -> dict[str, FloatArray]:
        """Every metric of one case, per label: ``{name: (n_labels,)}``."""
        return case_scores(
            reference, prediction, labels=labels, spacing=spacing, conventions=conventions
        )

    def worst_values(self, shape: tuple[int, ...], spacing: Spacing) -> dict[str, float]:
        """The values scored for a case without a prediction, the same for every label: each
        metric's worst (Dice, IoU, NSD 0; HD and HD95 the image diagonal in mm)."""
        diag = float(np.sqrt(np.sum((np.asarray(shape) * spacing) ** 2)))
        return {
            info.name: diag if math.isinf(info.worst) else info.worst
            for info in available_metrics("segmentation")
        }

    def values(
        self,
        predictions: LabelMaps,
        reference: Reference,
        *,
        labels: list[int],
        conventions: SegmentationConventions | None = None,
    ) -> Values:
        """Per-case, per-label values of every metric: ``{name: (n_cases, n_labels)}``."""
        rows = [
            self.case_values(
                reference.labels[i],
                predictions[i],
                labels=labels,
                spacing=reference.spacing[i],
                conventions=conventions,
            )
            for i in range(len(reference))
        ]
        return {name: np.stack([row[name] for row in rows]) for name in rows[0]}

    def aggregates(
        self,
        values: Values,
        *,
        conventions: SegmentationConventions | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> dict[str, MetricValue]:
        """Each metric aggregated over cases and labels, with its case-level bootstrap interval."""
        conv = self.resolve(conventions)
        n_cases = len(next(iter(values.values())))
        idx = bootstrap_indices(n_cases, n_samples=n_bootstrap, seed=seed)
        return {
            name: MetricValue(
                aggregate(v, aggregation=conv.aggregation),
                percentile_interval(aggregate_resampled(v, idx, aggregation=conv.aggregation)),
            )
            for name, v in values.items()
        }

    def per_case(self, values: Values) -> dict[str, FloatArray]:
        """Each metric of each case, averaged over the labels it defines (NaN left out)."""
        return {name: _mean_over_labels(v) for name, v in values.items()}

    def per_class(self, values: Values, labels: list[int]) -> dict[str, dict[str, float]]:
        """Each metric of each label, averaged over cases (NaN left out), by label."""
        return {
            str(label): {
                name: aggregate(v[:, j : j + 1], aggregation="class") for name, v in values.items()
            }
            for j, label in enumerate(labels)
        }


def _mean_over_labels(values: FloatArray) -> FloatArray:
    counted = np.sum(~np.isnan(values), axis=1)
    total = np.nansum(values, axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)


SEGMENTATION = Segmentation()
