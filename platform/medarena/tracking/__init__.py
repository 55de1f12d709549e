"""Experiment tracking in MLflow: the only package that imports mlflow."""

from __future__ import annotations

from medarena.tracking.curves import trial_curves
from medarena.tracking.mlflow_tracker import Tracker

__all__ = ["Tracker", "trial_curves"]
