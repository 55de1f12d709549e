"""Segmentation metrics for 2D and 3D masks with voxel spacing in millimetres.

Overlap metrics (Dice, IoU, here) count voxels. Distance metrics (Hausdorff, HD95, normalized
surface distance; :mod:`medarena.metrics._surface_metrics`) compare the two surfaces
(:mod:`medarena.metrics._surfaces`: how they are found, on which definition, "voxel" or
"surfel", and how their distances are computed). :func:`case_scores` scores every label of one
case of label maps, :func:`aggregate` makes one number of many cases. All five are registered
here, in one place (:func:`~medarena.metrics.metric_names` keeps their order).

Empty masks follow :data:`~medarena.metrics.conventions.EmptyBoth` and
:data:`~medarena.metrics.conventions.EmptyOne`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from medarena.metrics._masks import (
    FloatArray,
    Spacing,
    as_spacing,
    check_pair,
    empty_value,
    image_diagonal,
)
from medarena.metrics._registry import MetricInfo, register
from medarena.metrics._surface_metrics import (
    hausdorff_distance,
    hausdorff_from,
    hd95,
    normalized_surface_distance,
    nsd_from,
)
from medarena.metrics._surfaces import SurfaceDistances, distances_between, surface_distances
from medarena.metrics.bootstrap import nanmean
from medarena.metrics.conventions import (
    Aggregation,
    EmptyBoth,
    EmptyOne,
    SegmentationConventions,
)

__all__ = [
    "SEGMENTATION_METRICS",
    "SurfaceDistances",
    "aggregate",
    "aggregate_resampled",
    "case_scores",
    "dice",
    "hausdorff_distance",
    "hd95",
    "iou",
    "normalized_surface_distance",
    "surface_distances",
]

SEGMENTATION_METRICS = ("dice", "iou", "hd", "hd95", "nsd")


# --------------------------------------------------------------------------- overlap


def _overlap(
    metric: Literal["dice", "iou"],
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    empty_both: EmptyBoth,
    empty_one: EmptyOne,
) -> float:
    """Dice or IoU from the voxel counts of the two masks and of their intersection."""
    ref, pred = check_pair(reference, prediction)
    a = int(np.count_nonzero(ref))
    b = int(np.count_nonzero(pred))
    if a == 0 or b == 0:
        return empty_value(
            metric, both=a == b, empty_both=empty_both, empty_one=empty_one, worst_distance=0.0
        )
    inter = int(np.count_nonzero(ref & pred))
    return 2.0 * inter / (a + b) if metric == "dice" else inter / (a + b - inter)


def dice(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    empty_both: EmptyBoth = "best",
    empty_one: EmptyOne = "worst",
) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|) of two binary masks.

    As MONAI's ``compute_dice``: with ``empty_both="best"`` like ``ignore_empty=False`` (1 when
    both are empty), with ``empty_both="nan"`` NaN when both are empty. ``spacing`` is accepted
    for a uniform signature and does not change the value.
    """
    return _overlap("dice", reference, prediction, empty_both=empty_both, empty_one=empty_one)


def iou(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    empty_both: EmptyBoth = "best",
    empty_one: EmptyOne = "worst",
) -> float:
    """Intersection over union (Jaccard index) |A and B| / |A or B|, as MONAI's ``compute_iou``."""
    return _overlap("iou", reference, prediction, empty_both=empty_both, empty_one=empty_one)


# --------------------------------------------------------------------------- label maps


def case_scores(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    labels: Sequence[int],
    spacing: Spacing = None,
    conventions: SegmentationConventions | None = None,
) -> dict[str, FloatArray]:
    """Every segmentation metric for every label of one case of integer label maps.

    Returns ``{metric: values}`` with one value per entry of ``labels``; the surfaces of each
    label are found once and shared by HD, HD95 and NSD.
    """
    c = conventions or SegmentationConventions()
    ref_map = np.asarray(reference)
    pred_map = np.asarray(prediction)
    if ref_map.shape != pred_map.shape:
        raise ValueError(
            f"reference shape {ref_map.shape} differs from prediction shape {pred_map.shape}"
        )
    sp = as_spacing(spacing, ref_map.ndim)
    worst = image_diagonal(ref_map.shape, sp)
    out = {name: np.empty(len(labels)) for name in SEGMENTATION_METRICS}
    for i, label in enumerate(labels):
        ref, pred = ref_map == label, pred_map == label
        opts = {"empty_both": c.empty_both, "empty_one": c.empty_one}
        out["dice"][i] = dice(ref, pred, **opts)  # type: ignore[arg-type]
        out["iou"][i] = iou(ref, pred, **opts)  # type: ignore[arg-type]
        sd = distances_between(ref, pred, sp, c.surface)
        if sd is None:
            both = not ref.any() and not pred.any()
            for name in ("hd", "hd95", "nsd"):
                out[name][i] = empty_value(
                    name,
                    both=both,
                    empty_both=c.empty_both,
                    empty_one=c.empty_one,
                    worst_distance=worst,
                )
            continue
        out["hd"][i] = hausdorff_from(sd, 100.0, c.percentile_mode, c.surface)
        out["hd95"][i] = hausdorff_from(sd, 95.0, c.percentile_mode, c.surface)
        out["nsd"][i] = nsd_from(sd, c.nsd_tolerance_mm)
    return out


def aggregate(values: npt.ArrayLike, *, aggregation: Aggregation = "case") -> float:
    """One number from per-case, per-class values of shape ``(n_cases, n_classes)``.

    "case": mean over cases of each case's mean over classes (nnU-Net's and MONAI's
    ``reduction="mean"`` over a batch then classes differ only in NaN handling); "class": mean
    over classes of each class's mean over cases. NaN values are left out of every mean.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if aggregation == "case":
        return float(nanmean(nanmean(v, axis=1), axis=0))
    return float(nanmean(nanmean(v, axis=0), axis=0))


def aggregate_resampled(
    values: npt.ArrayLike, indices: npt.NDArray[np.intp], *, aggregation: Aggregation = "case"
) -> FloatArray:
    """:func:`aggregate` for every row of case ``indices`` (shape ``(n_samples, n_cases)``)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if aggregation == "case":
        return nanmean(nanmean(v, axis=1)[indices], axis=1)
    return nanmean(nanmean(v[indices], axis=1), axis=1)


for _info in (
    MetricInfo("dice", "Dice", "segmentation", True, (0.0, 1.0), dice, "MONAI compute_dice"),
    MetricInfo("iou", "IoU", "segmentation", True, (0.0, 1.0), iou, "MONAI compute_iou"),
    MetricInfo(
        "hd",
        "Hausdorff distance (mm)",
        "segmentation",
        False,
        (0.0, math.inf),
        hausdorff_distance,
        "MONAI compute_hausdorff_distance",
    ),
    MetricInfo(
        "hd95",
        "95th percentile Hausdorff distance (mm)",
        "segmentation",
        False,
        (0.0, math.inf),
        hd95,
        "MONAI compute_hausdorff_distance(percentile=95); medpy hd95",
    ),
    MetricInfo(
        "nsd",
        "Normalized surface distance",
        "segmentation",
        True,
        (0.0, 1.0),
        normalized_surface_distance,
        "MONAI compute_surface_dice; DeepMind compute_surface_dice_at_tolerance",
    ),
):
    register(_info)
