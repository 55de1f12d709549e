"""What a sweep hands back: its finished trials, its progress, its result (plain values)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from medarena.execution.supervisor import TrialOutcome
from medarena.store.values import TrialState


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as the platform records it."""

    number: int
    params: dict[str, Any]
    state: TrialState
    outcome: TrialOutcome
    attempts: int = 1
    node_id: str = ""

    @property
    def value(self) -> float:
        return self.outcome.best_value


@dataclass
class SweepProgress:
    """Where a sweep stands; passed to the progress callback after every trial.

    ``done`` counts every finished trial, including ``restored`` ones finished by an earlier
    driver of the same sweep; ``retried`` counts re-runs after a worker died.
    """

    total: int
    done: int = 0
    failed: int = 0
    pruned: int = 0
    running: int = 0
    retried: int = 0
    restored: int = 0
    best_value: float = math.nan
    best_number: int = -1
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def eta(self) -> float:
        """Seconds until the last trial finishes, from this run's pace (NaN before any)."""
        finished_here = self.done - self.restored
        if finished_here <= 0:
            return math.nan
        return self.elapsed / finished_here * (self.total - self.done)


@dataclass(frozen=True)
class SweepResult:
    """Every trial of a sweep, the best one, and its predictions of the test inputs (made in an
    inference sandbox by the best trial's weights)."""

    study_name: str
    trials: list[TrialRecord]
    best: TrialRecord
    wall_seconds: float
    test_predictions: Any
