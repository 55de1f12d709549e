"""Metrics as pure numpy functions, each registered with the metadata a leaderboard ranks by.

The leaderboard, the scorer and the trial workers look metrics up by name here; no other module
hard-codes a metric's name or direction. Conventions on which reference implementations differ
are named options (:mod:`medarena.metrics.conventions`), recorded next to every score.
"""

from __future__ import annotations

from medarena.metrics._registry import (
    MetricInfo,
    available_metrics,
    get_metric,
    metric_names,
    register,
)
from medarena.metrics.bootstrap import (
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_mean_ci,
    percentile_interval,
)
from medarena.metrics.classification import (
    accuracy,
    balanced_accuracy,
    binary_auc,
    confusion_matrix,
    f1_macro,
    per_class_statistics,
    roc_auc,
    top_k_accuracy,
)
from medarena.metrics.conventions import (
    ClassificationConventions,
    DetectionConventions,
    SegmentationConventions,
)
from medarena.metrics.detection import (
    DetectionMatches,
    FrocBootstrap,
    cpm,
    detection_sensitivity,
    fps_per_scan,
    froc_bootstrap,
    froc_curve,
    match_candidates,
    sensitivity_at,
)
from medarena.metrics.segmentation import (
    aggregate,
    aggregate_resampled,
    case_scores,
    dice,
    hausdorff_distance,
    hd95,
    iou,
    normalized_surface_distance,
    surface_distances,
)

__all__ = [
    "ClassificationConventions",
    "DetectionConventions",
    "DetectionMatches",
    "FrocBootstrap",
    "MetricInfo",
    "SegmentationConventions",
    "accuracy",
    "aggregate",
    "aggregate_resampled",
    "available_metrics",
    "balanced_accuracy",
    "binary_auc",
    "bootstrap_ci",
    "bootstrap_indices",
    "bootstrap_mean_ci",
    "case_scores",
    "confusion_matrix",
    "cpm",
    "detection_sensitivity",
    "dice",
    "f1_macro",
    "fps_per_scan",
    "froc_bootstrap",
    "froc_curve",
    "get_metric",
    "hausdorff_distance",
    "hd95",
    "iou",
    "match_candidates",
    "metric_names",
    "normalized_surface_distance",
    "per_class_statistics",
    "percentile_interval",
    "register",
    "roc_auc",
    "sensitivity_at",
    "surface_distances",
    "top_k_accuracy",
]
