"""Scores with bootstrap intervals from in-memory predictions and ground truth.

The one implementation of scoring: the platform's scorer (which alone holds the test labels)
and ``medarena evaluate`` (which reads prediction files first) both call these functions.
Every aggregate gets a seeded, case-level (scan-level for detection) bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.metrics import (
    ClassificationConventions,
    DetectionConventions,
    DetectionMatches,
    SegmentationConventions,
    aggregate,
    aggregate_resampled,
    available_metrics,
    bootstrap_ci,
    bootstrap_indices,
    froc_bootstrap,
    percentile_interval,
)
from medarena.metrics.classification import case_correct
from medarena.metrics.detection import froc_summary
from medarena.tasks.kinds import Candidates, Reference
from medarena.tasks.kinds.detection import match_findings
from medarena.tasks.kinds.segmentation import foreground_labels, segmentation_values

Conventions = ClassificationConventions | SegmentationConventions | DetectionConventions


@dataclass(frozen=True)
class MetricValue:
    """An aggregate score and its bootstrap interval."""

    value: float
    ci: tuple[float, float]

    @property
    def ci_low(self) -> float:
        return self.ci[0]

    @property
    def ci_high(self) -> float:
        return self.ci[1]

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.value, self.ci[0], self.ci[1])


def score_classification(
    y_true: npt.NDArray[np.integer],
    scores: npt.NDArray[np.floating],
    *,
    conventions: ClassificationConventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Every classification metric over all cases, each with its bootstrap interval."""
    conv = conventions or ClassificationConventions()
    out: dict[str, MetricValue] = {}
    for info in available_metrics("classification"):
        kwargs = conv.metric_options(info.name)
        value = info.compute(y_true, scores, **kwargs)
        ci = bootstrap_ci(info.compute, y_true, scores, n_samples=n_bootstrap, seed=seed, **kwargs)
        out[info.name] = MetricValue(float(value), ci)
    return out


def score_segmentation(
    values: dict[str, npt.NDArray[np.float64]],
    *,
    conventions: SegmentationConventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Aggregate per-case, per-label values ``{metric: (n_cases, n_labels)}`` with intervals."""
    conv = conventions or SegmentationConventions()
    n_cases = len(next(iter(values.values())))
    idx = bootstrap_indices(n_cases, n_samples=n_bootstrap, seed=seed)
    return {
        name: MetricValue(
            aggregate(v, aggregation=conv.aggregation),
            percentile_interval(aggregate_resampled(v, idx, aggregation=conv.aggregation)),
        )
        for name, v in values.items()
    }


def score_detection(
    matches: DetectionMatches,
    *,
    conventions: DetectionConventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """CPM, sensitivity, false positives per scan and sensitivity at each operating point."""
    conv = conventions or DetectionConventions()
    opts: dict[str, Any] = {
        "operating_points": conv.operating_points,
        "interpolation": conv.interpolation,
    }
    values = froc_summary(matches, **opts)
    boot = froc_bootstrap(matches, n_samples=n_bootstrap, seed=seed, **opts).by_name(conv.points)
    return {name: MetricValue(v, percentile_interval(boot[name])) for name, v in values.items()}


@dataclass(frozen=True)
class Scores:
    """Aggregates with intervals, and the per-case values that rankings and statistics need.

    ``per_case`` maps a name to one value per case of the reference, in its order:
    classification ``correct`` and ``probability_of_label``; segmentation each metric averaged
    over the labels of the case; detection ``lesions``, ``detected`` and ``false_positives`` per
    scan.
    """

    metrics: dict[str, MetricValue]
    per_case: dict[str, npt.NDArray[np.float64]]


def _mean_over_labels(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    counted = np.sum(~np.isnan(values), axis=1)
    total = np.nansum(values, axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)


def score_predictions(
    kind: str,
    predictions: Any,
    reference: Reference,
    *,
    conventions: Conventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Scores:
    """A trained model's predictions of a task's cases, scored against their ground truth."""
    if kind == "classification":
        assert conventions is None or isinstance(conventions, ClassificationConventions)
        labels = np.asarray(reference.labels)
        rows = np.arange(len(labels))
        return Scores(
            score_classification(
                labels, predictions, conventions=conventions, n_bootstrap=n_bootstrap, seed=seed
            ),
            {
                "correct": case_correct(labels, predictions).astype(np.float64),
                "probability_of_label": np.asarray(predictions[rows, labels], dtype=np.float64),
            },
        )
    if kind == "segmentation":
        assert conventions is None or isinstance(conventions, SegmentationConventions)
        values = segmentation_values(
            predictions, reference, labels=foreground_labels(reference), conventions=conventions
        )
        return Scores(
            score_segmentation(values, conventions=conventions, n_bootstrap=n_bootstrap, seed=seed),
            {name: _mean_over_labels(v) for name, v in values.items()},
        )
    assert isinstance(predictions, Candidates)
    assert conventions is None or isinstance(conventions, DetectionConventions)
    matches = match_findings(predictions, reference, conventions=conventions)
    n = len(reference)
    detected = matches.lesion_scan[np.isfinite(matches.lesion_score)]
    return Scores(
        score_detection(matches, conventions=conventions, n_bootstrap=n_bootstrap, seed=seed),
        {
            "lesions": np.bincount(matches.lesion_scan, minlength=n).astype(np.float64),
            "detected": np.bincount(detected, minlength=n).astype(np.float64),
            "false_positives": np.bincount(matches.fp_scan, minlength=n).astype(np.float64),
        },
    )
