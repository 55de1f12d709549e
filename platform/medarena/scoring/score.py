"""Score a model's test predictions against the hidden labels, with bootstrap intervals.

Runs only in the trusted process, which alone holds the test labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medarena.exceptions import PlatformError
from medarena.metrics import bootstrap_ci, get_metric


@dataclass(frozen=True)
class Score:
    """A metric's value on the test set and its bootstrap confidence interval."""

    value: float
    ci_low: float
    ci_high: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.value, self.ci_low, self.ci_high)


def score_classification(
    labels: npt.NDArray[np.int64],
    proba: npt.NDArray[np.float64],
    metrics: list[str],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Score]:
    """Each metric's value and 95% interval (case-level bootstrap, seeded)."""
    if proba.shape[0] != labels.shape[0]:
        raise PlatformError(f"{proba.shape[0]} predictions for {labels.shape[0]} test cases")
    scores = {}
    for name in metrics:
        info = get_metric(name)
        low, high = bootstrap_ci(info.compute, labels, proba, n_samples=n_bootstrap, seed=seed)
        scores[name] = Score(info.compute(labels, proba), low, high)
    return scores
