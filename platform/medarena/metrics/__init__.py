"""Metrics as pure numpy functions, each registered with the metadata a leaderboard ranks by.

The leaderboard, the scorer and the trial workers look metrics up by name here; no other module
hard-codes a metric's name or direction.
"""

from __future__ import annotations

from medarena.metrics._registry import MetricInfo, available_metrics, get_metric
from medarena.metrics.bootstrap import bootstrap_ci
from medarena.metrics.classification import accuracy, roc_auc

__all__ = [
    "MetricInfo",
    "accuracy",
    "available_metrics",
    "bootstrap_ci",
    "get_metric",
    "roc_auc",
]
