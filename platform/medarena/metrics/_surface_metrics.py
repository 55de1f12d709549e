"""Surface-distance metrics: the (percentile) Hausdorff distance, HD95 and the normalized
surface distance (surface Dice), from the surfaces of :mod:`medarena.metrics._surfaces`."""

from __future__ import annotations

import math
from collections.abc import Callable

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
from medarena.metrics._surfaces import SurfaceDistances, distances_between
from medarena.metrics.conventions import EmptyBoth, EmptyOne, PercentileMode, Surface


def _from_surfaces(
    metric: str,
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    value: Callable[[SurfaceDistances], float],
    *,
    spacing: Spacing,
    surface: Surface,
    empty_both: EmptyBoth,
    empty_one: EmptyOne,
    bound: float = math.inf,
) -> float:
    """``value`` of the distances between the two masks' surfaces, or ``metric``'s value for
    empty masks (a distance metric's worst is the image diagonal)."""
    ref, pred = check_pair(reference, prediction)
    sp = as_spacing(spacing, ref.ndim)
    sd = distances_between(ref, pred, sp, surface, bound=bound)
    if sd is None:
        return empty_value(
            metric,
            both=not ref.any() and not pred.any(),
            empty_both=empty_both,
            empty_one=empty_one,
            worst_distance=image_diagonal(ref.shape, sp),
        )
    return value(sd)


def _weighted_percentile(distances: FloatArray, weights: FloatArray, percentile: float) -> float:
    """DeepMind's ``compute_robust_hausdorff`` rule: the distance where the cumulated area of the
    sorted surface elements first reaches ``percentile`` percent."""
    order = np.argsort(distances, kind="stable")
    cum = np.cumsum(weights[order]) / np.sum(weights)
    idx = int(np.searchsorted(cum, percentile / 100.0))
    return float(distances[order][min(idx, distances.size - 1)])


def hausdorff_from(
    sd: SurfaceDistances, percentile: float, percentile_mode: PercentileMode, surface: Surface
) -> float:
    """:func:`hausdorff_distance` from the distances between two surfaces."""
    if percentile >= 100:
        return float(max(sd.ref_to_pred.max(), sd.pred_to_ref.max()))
    if surface == "surfel":
        return max(
            _weighted_percentile(sd.ref_to_pred, sd.weights_ref, percentile),
            _weighted_percentile(sd.pred_to_ref, sd.weights_pred, percentile),
        )
    if percentile_mode == "pooled":
        return float(np.percentile(np.concatenate([sd.pred_to_ref, sd.ref_to_pred]), percentile))
    return float(
        max(np.percentile(sd.ref_to_pred, percentile), np.percentile(sd.pred_to_ref, percentile))
    )


def hausdorff_distance(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    percentile: float = 100.0,
    percentile_mode: PercentileMode = "directed_max",
    surface: Surface = "voxel",
    empty_both: EmptyBoth = "best",
    empty_one: EmptyOne = "worst",
) -> float:
    """(Percentile) Hausdorff distance in mm between the surfaces of two binary masks.

    ``percentile_mode="directed_max"``: the larger of the two directed percentiles, as MONAI's
    ``compute_hausdorff_distance(percentile=..., directed=False)``; "pooled": the percentile of
    both directions' distances together, as medpy's ``hd95``. ``surface="surfel"`` weighs
    surface elements by area, as DeepMind's ``compute_robust_hausdorff``.
    """
    return _from_surfaces(
        "hd",
        reference,
        prediction,
        lambda sd: hausdorff_from(sd, percentile, percentile_mode, surface),
        spacing=spacing,
        surface=surface,
        empty_both=empty_both,
        empty_one=empty_one,
    )


def hd95(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    percentile_mode: PercentileMode = "directed_max",
    surface: Surface = "voxel",
    empty_both: EmptyBoth = "best",
    empty_one: EmptyOne = "worst",
) -> float:
    """95th-percentile Hausdorff distance in mm (see :func:`hausdorff_distance`)."""
    return hausdorff_distance(
        reference,
        prediction,
        spacing=spacing,
        percentile=95.0,
        percentile_mode=percentile_mode,
        surface=surface,
        empty_both=empty_both,
        empty_one=empty_one,
    )


def _nsd_bound(tolerance_mm: float) -> float:
    """A k-d tree search radius that finds every surface point within ``tolerance_mm`` (the tree
    leaves out points at the radius itself and compares rounded squared distances, hence the
    margin); infinity, no limit, for a tolerance that is negative, infinite or NaN."""
    if not 0.0 <= tolerance_mm < math.inf:
        return math.inf
    return tolerance_mm * (1.0 + 1e-9) + 1e-12


def nsd_from(sd: SurfaceDistances, tolerance_mm: float) -> float:
    """:func:`normalized_surface_distance` from the distances between two surfaces."""
    good = np.sum(sd.weights_ref[sd.ref_to_pred <= tolerance_mm]) + np.sum(
        sd.weights_pred[sd.pred_to_ref <= tolerance_mm]
    )
    return float(good / (np.sum(sd.weights_ref) + np.sum(sd.weights_pred)))


def normalized_surface_distance(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    tolerance_mm: float = 1.0,
    surface: Surface = "voxel",
    empty_both: EmptyBoth = "best",
    empty_one: EmptyOne = "worst",
) -> float:
    """Normalized surface distance (surface Dice) at ``tolerance_mm``: the share of both surfaces
    lying within the tolerance of the other.

    ``surface="voxel"`` as MONAI's ``compute_surface_dice(use_subvoxels=False)``, "surfel" as
    DeepMind's ``compute_surface_dice_at_tolerance`` (Nikolov et al. 2021).
    """
    return _from_surfaces(
        "nsd",
        reference,
        prediction,
        lambda sd: nsd_from(sd, tolerance_mm),
        spacing=spacing,
        surface=surface,
        empty_both=empty_both,
        empty_one=empty_one,
        bound=_nsd_bound(tolerance_mm),
    )
