"""What the segmentation metrics share: checked pairs of masks, checked spacing, and the value
of a metric when a mask is empty (:data:`~medarena.metrics.conventions.EmptyBoth` and
:data:`~medarena.metrics.conventions.EmptyOne`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medarena.metrics.conventions import EmptyBoth, EmptyOne

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
Spacing = Sequence[float] | npt.NDArray[np.floating] | None


def as_spacing(spacing: Spacing, ndim: int) -> FloatArray:
    """``spacing`` as ``ndim`` finite positive millimetres (1 for ``None``)."""
    if spacing is None:
        return np.ones(ndim)
    s = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if s.size != ndim:
        raise ValueError(f"spacing has {s.size} values for a {ndim}-D mask")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing must be finite and positive, got {s.tolist()}")
    return s


def check_pair(reference: npt.ArrayLike, prediction: npt.ArrayLike) -> tuple[BoolArray, BoolArray]:
    """Two masks of one shape, 2-D or 3-D, as booleans."""
    ref = np.asarray(reference).astype(bool, copy=False)
    pred = np.asarray(prediction).astype(bool, copy=False)
    if ref.shape != pred.shape:
        raise ValueError(f"reference shape {ref.shape} differs from prediction shape {pred.shape}")
    if ref.ndim not in (2, 3):
        raise ValueError(f"masks must be 2-D or 3-D, got {ref.ndim}-D")
    return ref, pred


def image_diagonal(shape: tuple[int, ...], spacing: FloatArray) -> float:
    """The image diagonal in mm: no two points of the image are farther apart."""
    return float(np.sqrt(np.sum((np.asarray(shape) * spacing) ** 2)))


def empty_value(
    metric: str, *, both: bool, empty_both: EmptyBoth, empty_one: EmptyOne, worst_distance: float
) -> float:
    """The value of ``metric`` when both masks, or exactly one, are empty."""
    overlap = metric in ("dice", "iou", "nsd")
    if both:
        if empty_both == "nan":
            return float("nan")
        return 1.0 if overlap else 0.0
    if empty_one == "nan":
        return float("nan")
    if overlap:
        return 0.0
    return math.inf if empty_one == "inf" else worst_distance
