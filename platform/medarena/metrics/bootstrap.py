"""Bootstrap confidence intervals by resampling cases with replacement (seeded)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from medarena.metrics._registry import ClassificationMetric


def bootstrap_ci(
    metric: ClassificationMetric,
    y_true: npt.NDArray[np.int_],
    y_score: npt.NDArray[np.floating],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``metric`` over ``n_samples`` case-level resamples.

    Resamples for which the metric is undefined (NaN, e.g. a class missing) are dropped.
    """
    rng = np.random.default_rng(seed)
    n = len(y_true)
    values = np.empty(n_samples)
    for i in range(n_samples):
        idx = rng.integers(0, n, size=n)
        values[i] = metric(y_true[idx], y_score[idx])
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(low), float(high))
