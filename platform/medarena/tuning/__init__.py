"""Hyperparameter search: Optuna studies whose trials run on the execution layer's workers."""

from __future__ import annotations

from medarena.tuning.sweep import SweepProgress, SweepResult, TrialRecord, run_sweep

__all__ = ["SweepProgress", "SweepResult", "TrialRecord", "run_sweep"]
