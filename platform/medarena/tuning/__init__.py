"""Hyperparameter search: Optuna studies whose trials run on the execution layer's workers.

:mod:`~medarena.tuning.sweep` holds one submission's sweep (a state object that a driver steps);
:mod:`~medarena.tuning.sharing` its drivers (:class:`FairShare`, :func:`run_sweep`), which import
it and never the other way round; :mod:`~medarena.tuning.records` the values a sweep hands back;
:mod:`~medarena.tuning.jobs` the jobs it gives workers; :mod:`~medarena.tuning.study` its Optuna
study; :mod:`~medarena.tuning.pruning` the pruning board; :mod:`~medarena.tuning.space` search
spaces as Optuna distributions.
"""

from __future__ import annotations

from medarena.tuning.records import SweepProgress, SweepResult, TrialRecord
from medarena.tuning.sharing import FairShare, SweepCancelled, run_sweep
from medarena.tuning.sweep import Sweep

__all__ = [
    "FairShare",
    "Sweep",
    "SweepCancelled",
    "SweepProgress",
    "SweepResult",
    "TrialRecord",
    "run_sweep",
]
