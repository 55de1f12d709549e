"""Hyperparameter search: Optuna studies whose trials run on the execution layer's workers."""

from __future__ import annotations

from medarena.tuning.sharing import FairShare
from medarena.tuning.sweep import (
    Sweep,
    SweepCancelled,
    SweepProgress,
    SweepResult,
    TrialRecord,
    run_sweep,
)

__all__ = [
    "FairShare",
    "Sweep",
    "SweepCancelled",
    "SweepProgress",
    "SweepResult",
    "TrialRecord",
    "run_sweep",
]
