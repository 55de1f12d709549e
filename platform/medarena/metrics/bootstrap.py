"""Bootstrap confidence intervals by resampling cases (scans for detection) with replacement.

Every interval is a percentile interval over ``n_samples`` seeded resamples; resamples for which
the statistic is undefined (NaN, e.g. a class missing from the resample) are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt


def nanmean(values: npt.NDArray[np.float64], axis: int) -> npt.NDArray[np.float64]:
    """Mean along ``axis`` ignoring NaN, NaN where everything is NaN (without numpy's warning)."""
    valid = ~np.isnan(values)
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan))


def bootstrap_indices(n: int, *, n_samples: int = 1000, seed: int = 0) -> npt.NDArray[np.intp]:
    """Case indices of ``n_samples`` resamples of ``n`` cases, shape ``(n_samples, n)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_samples, n)).astype(np.intp)


def percentile_interval(values: npt.ArrayLike, *, confidence: float = 0.95) -> tuple[float, float]:
    """Central ``confidence`` interval of bootstrap values, ignoring NaN; (NaN, NaN) if none."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(v, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def bootstrap_ci(
    metric: Callable[..., float],
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    **metric_kwargs: Any,
) -> tuple[float, float]:
    """Percentile interval of ``metric(y_true, y_score, **metric_kwargs)`` over case resamples."""
    t = np.asarray(y_true)
    s = np.asarray(y_score)
    idx = bootstrap_indices(len(t), n_samples=n_samples, seed=seed)
    values = np.array([metric(t[i], s[i], **metric_kwargs) for i in idx], dtype=np.float64)
    return percentile_interval(values, confidence=confidence)


def bootstrap_mean_ci(
    per_case: npt.ArrayLike,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval of the NaN-ignoring mean of per-case values, vectorised over resamples."""
    v = np.asarray(per_case, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return (float("nan"), float("nan"))
    idx = bootstrap_indices(v.size, n_samples=n_samples, seed=seed)
    return percentile_interval(nanmean(v[idx], axis=1), confidence=confidence)
