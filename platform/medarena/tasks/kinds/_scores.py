"""What scoring a kind's predictions gives: aggregates with intervals, and per-case values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


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
