"""Segmentation metrics for 2D and 3D masks with voxel spacing in millimetres.

Overlap metrics (Dice, IoU) count voxels. Distance metrics (Hausdorff, HD95, normalized surface
distance) compare the two surfaces. They work in the bounding box of the two masks' union,
padded with one voxel of background: every surface element of either mask lies in that box, and
the padding gives foreground on the box's faces the background neighbour that the zeros outside
the image give it, so the surfaces found there are those of the whole image, and so are the
Euclidean distances between them. Each mask is read once in full to find the box; nothing else
touches the rest of the image.

Voxel-surface distances in mm come from a k-d tree over the surface points, without a dense
distance transform: those of ``scipy.ndimage.distance_transform_edt(..., sampling=spacing)`` at
surface points, as the tree rounds them (as MONAI's k-d tree), which can differ from the
transform's in the last bit. Surfel distances come from a distance transform of the box, as
DeepMind's (a tree is slower when many surfels lie far from the other surface, as when a
prediction fills the image). NSD needs only the distances within its tolerance: it searches a
tree that far, for surfels recomputing the distance to the nearest surfel from its integer offset
as the transform computes it. A point on both surfaces is at distance 0 without a search. Where
several points are nearest at equal distances, the tree and the transform may pick different
ones, whose distances can then differ in the last bit.

Two surface definitions (``surface``):

* "voxel": foreground voxels with a background 6-neighbour (4 in 2D), i.e. ``mask ^
  binary_erosion(mask)`` with zeros outside the image, as MONAI's ``get_mask_edges`` and medpy's
  ``__surface_distances``; every surface voxel weighs the same.
* "surfel": marching-cube surface elements on the grid of voxel corners, each weighted by its area
  (length in 2D), as DeepMind's ``surface-distance`` ``compute_surface_distances``.

Empty masks follow :data:`~medarena.metrics.conventions.EmptyBoth` and
:data:`~medarena.metrics.conventions.EmptyOne`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from medarena.metrics._registry import MetricInfo, register
from medarena.metrics._surfel_tables import NEIGHBOUR_CODE_TO_NORMALS
from medarena.metrics.conventions import (
    Aggregation,
    EmptyBoth,
    EmptyOne,
    PercentileMode,
    SegmentationConventions,
    Surface,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
Spacing = Sequence[float] | npt.NDArray[np.floating] | None

SEGMENTATION_METRICS = ("dice", "iou", "hd", "hd95", "nsd")


def _spacing(spacing: Spacing, ndim: int) -> FloatArray:
    if spacing is None:
        return np.ones(ndim)
    s = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if s.size != ndim:
        raise ValueError(f"spacing has {s.size} values for a {ndim}-D mask")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing must be finite and positive, got {s.tolist()}")
    return s


def _check_pair(reference: npt.ArrayLike, prediction: npt.ArrayLike) -> tuple[BoolArray, BoolArray]:
    ref = np.asarray(reference).astype(bool, copy=False)
    pred = np.asarray(prediction).astype(bool, copy=False)
    if ref.shape != pred.shape:
        raise ValueError(f"reference shape {ref.shape} differs from prediction shape {pred.shape}")
    if ref.ndim not in (2, 3):
        raise ValueError(f"masks must be 2-D or 3-D, got {ref.ndim}-D")
    return ref, pred


def _worst_distance(shape: tuple[int, ...], spacing: FloatArray) -> float:
    """The image diagonal in mm: no two points of the image are farther apart."""
    return float(np.sqrt(np.sum((np.asarray(shape) * spacing) ** 2)))


def _empty_value(
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


# --------------------------------------------------------------------------- overlap


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
    ref, pred = _check_pair(reference, prediction)
    a = int(np.count_nonzero(ref))
    b = int(np.count_nonzero(pred))
    if a == 0 or b == 0:
        return _empty_value(
            "dice", both=a == b, empty_both=empty_both, empty_one=empty_one, worst_distance=0.0
        )
    inter = int(np.count_nonzero(ref & pred))
    return 2.0 * inter / (a + b)


def iou(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    empty_both: EmptyBoth = "best",
    empty_one: EmptyOne = "worst",
) -> float:
    """Intersection over union (Jaccard index) |A and B| / |A or B|, as MONAI's ``compute_iou``."""
    ref, pred = _check_pair(reference, prediction)
    a = int(np.count_nonzero(ref))
    b = int(np.count_nonzero(pred))
    if a == 0 or b == 0:
        return _empty_value(
            "iou", both=a == b, empty_both=empty_both, empty_one=empty_one, worst_distance=0.0
        )
    inter = int(np.count_nonzero(ref & pred))
    return inter / (a + b - inter)


# --------------------------------------------------------------------------- surfaces


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed distances (mm) between two non-empty surfaces, with each element's weight.

    ``weights_*`` are 1 for "voxel" surfaces and the surfel areas (lengths in 2D) for "surfel".
    """

    ref_to_pred: FloatArray
    pred_to_ref: FloatArray
    weights_ref: FloatArray
    weights_pred: FloatArray


def _bounding_box(ref: BoolArray, pred: BoolArray) -> tuple[slice, ...] | None:
    """The bounding box of ``ref | pred``; ``None`` if either mask is empty.

    Reads each full mask once, along its first axis (a mask that is not C-contiguous is copied
    for that); the other axes are reduced only inside the slab of rows that hold foreground.
    """
    if ref.size == 0:
        return None
    rows_ref = ref.reshape(ref.shape[0], -1).any(axis=1)
    rows_pred = pred.reshape(pred.shape[0], -1).any(axis=1)
    if not rows_ref.any() or not rows_pred.any():
        return None
    rows = np.flatnonzero(rows_ref | rows_pred)
    first = slice(int(rows[0]), int(rows[-1]) + 1)
    plane: BoolArray = np.logical_or(ref[first].any(axis=0), pred[first].any(axis=0))
    box = [first]
    for axis in range(plane.ndim):
        others = tuple(i for i in range(plane.ndim) if i != axis)
        nz = np.flatnonzero(plane.any(axis=others) if others else plane)
        box.append(slice(int(nz[0]), int(nz[-1]) + 1))
    return tuple(box)


def _padded(mask: BoolArray, box: tuple[slice, ...]) -> BoolArray:
    """``mask[box]`` with one voxel of background on every side."""
    crop = mask[box]
    out = np.zeros(tuple(s + 2 for s in crop.shape), dtype=bool)
    out[tuple(slice(1, -1) for _ in crop.shape)] = crop
    return out


def _voxel_surface(padded: BoolArray) -> BoolArray:
    """Foreground voxels with a background face-neighbour (``mask ^ binary_erosion(mask)``)."""
    nd = padded.ndim
    inner = tuple(slice(1, -1) for _ in range(nd))
    core = padded[inner]
    interior = core.copy()
    for axis in range(nd):
        lo = tuple(slice(0, -2) if i == axis else slice(1, -1) for i in range(nd))
        hi = tuple(slice(2, None) if i == axis else slice(1, -1) for i in range(nd))
        interior &= padded[lo]
        interior &= padded[hi]
    out: BoolArray = core & ~interior
    return out


_AREA_TABLES: dict[tuple[float, ...], FloatArray] = {}
_NORMALS = [np.asarray(n, dtype=np.float64) for n in NEIGHBOUR_CODE_TO_NORMALS]


def _surfel_weights(spacing: FloatArray) -> FloatArray:
    """Area (3D) or length (2D) of the surface in each neighbourhood code, scaled by spacing.

    3D as DeepMind's ``create_table_neighbour_code_to_surface_area``, 2D as its
    ``create_table_neighbour_code_to_contour_length``.
    """
    key = tuple(float(s) for s in spacing)
    table = _AREA_TABLES.get(key)
    if table is not None:
        return table
    if spacing.size == 3:
        scale = np.array(
            [spacing[1] * spacing[2], spacing[0] * spacing[2], spacing[0] * spacing[1]]
        )
        table = np.array([np.linalg.norm(n * scale, axis=1).sum() for n in _NORMALS])
    else:
        v, h = float(spacing[0]), float(spacing[1])
        diag = 0.5 * math.sqrt(v * v + h * h)
        table = np.zeros(16)
        for code, length in {
            0b0001: diag, 0b0010: diag, 0b0011: h, 0b0100: diag, 0b0101: v, 0b0110: 2 * diag,
            0b0111: diag, 0b1000: diag, 0b1001: 2 * diag, 0b1010: v, 0b1011: diag, 0b1100: h,
            0b1101: diag, 0b1110: diag,
        }.items():  # fmt: skip
            table[code] = length
    _AREA_TABLES[key] = table
    return table


def _neighbour_codes(padded: BoolArray) -> npt.NDArray[np.intp]:
    """Code of each 2x2(x2) corner neighbourhood: corners weighted 2^(n-1) … 1 in C order."""
    nd = padded.ndim
    n_corners = 2**nd
    size = tuple(s - 1 for s in padded.shape)
    code = np.zeros(size, dtype=np.uint8)
    for bit, offset in enumerate(np.ndindex(*(2,) * nd)):
        sl = tuple(slice(o, o + s) for o, s in zip(offset, size, strict=True))
        code |= padded[sl].view(np.uint8) << np.uint8(n_corners - 1 - bit)
    return code.astype(np.intp, copy=False)


def _lengths(offsets: IntArray, spacing: FloatArray) -> FloatArray:
    """Lengths in mm of integer grid offsets, with ``distance_transform_edt``'s operations: per
    axis offset times spacing, squared; summed over the axes in order; square root."""
    squares = offsets * spacing
    squares *= squares
    total = squares[:, 0].copy()
    for axis in range(1, offsets.shape[1]):
        total += squares[:, axis]
    return np.sqrt(total)


def _nearest(
    source: IntArray,
    on_target: BoolArray,
    target: IntArray,
    spacing: FloatArray,
    bound: float,
    *,
    transform_rounding: bool,
) -> FloatArray:
    """Distance in mm from every source point to the nearest target point (grid indices).

    0 where the source point is itself a target point (``on_target``), without a search;
    elsewhere the nearest target point from a k-d tree over the points in mm. With a finite
    ``bound``, distances beyond it may be reported as infinity (for NSD).
    ``transform_rounding``: the distance to that point recomputed from the integer offset as
    ``distance_transform_edt`` computes it (:func:`_lengths`), not as the tree rounds it.
    """
    out = np.zeros(len(source))
    todo = np.flatnonzero(~on_target)
    if todo.size == 0:
        return out
    tree = cKDTree(target * spacing, leafsize=32)
    distances, nearest = tree.query(source[todo] * spacing, k=1, distance_upper_bound=bound)
    if transform_rounding:
        found = np.flatnonzero(nearest < len(target))
        offsets = source[todo[found]] - target[nearest[found]]
        distances[found] = _lengths(offsets, spacing)
    out[todo] = distances
    return out


def _surface_distances(
    ref: BoolArray, pred: BoolArray, spacing: FloatArray, surface: Surface, bound: float = math.inf
) -> SurfaceDistances | None:
    """:func:`surface_distances` of checked masks; with a finite ``bound`` (NSD), distances
    beyond it may be infinity."""
    box = _bounding_box(ref, pred)
    if box is None:
        return None
    ref_p, pred_p = _padded(ref, box), _padded(pred, box)
    if surface == "voxel":
        ref_s, pred_s = _voxel_surface(ref_p), _voxel_surface(pred_p)
        w_ref = np.ones(int(np.count_nonzero(ref_s)))
        w_pred = np.ones(int(np.count_nonzero(pred_s)))
    else:
        full = 2 ** (2**ref.ndim) - 1
        table = _surfel_weights(spacing)
        code_ref, code_pred = _neighbour_codes(ref_p), _neighbour_codes(pred_p)
        ref_s = (code_ref != 0) & (code_ref != full)
        pred_s = (code_pred != 0) & (code_pred != full)
        w_ref, w_pred = table[code_ref[ref_s]], table[code_pred[pred_s]]
        if bound == math.inf:  # a tree is slow for many far points, a transform is not
            return SurfaceDistances(
                ref_to_pred=distance_transform_edt(~pred_s, sampling=spacing)[ref_s],
                pred_to_ref=distance_transform_edt(~ref_s, sampling=spacing)[pred_s],
                weights_ref=w_ref,
                weights_pred=w_pred,
            )
    edt = surface == "surfel"  # see the module's docstring
    ref_i, pred_i = np.argwhere(ref_s), np.argwhere(pred_s)
    return SurfaceDistances(
        ref_to_pred=_nearest(ref_i, pred_s[ref_s], pred_i, spacing, bound, transform_rounding=edt),
        pred_to_ref=_nearest(pred_i, ref_s[pred_s], ref_i, spacing, bound, transform_rounding=edt),
        weights_ref=w_ref,
        weights_pred=w_pred,
    )


def surface_distances(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    *,
    spacing: Spacing = None,
    surface: Surface = "voxel",
) -> SurfaceDistances | None:
    """Distances between the two surfaces in both directions; ``None`` if either mask is empty."""
    ref, pred = _check_pair(reference, prediction)
    return _surface_distances(ref, pred, _spacing(spacing, ref.ndim), surface)


def _weighted_percentile(distances: FloatArray, weights: FloatArray, percentile: float) -> float:
    """DeepMind's ``compute_robust_hausdorff`` rule: the distance where the cumulated area of the
    sorted surface elements first reaches ``percentile`` percent."""
    order = np.argsort(distances, kind="stable")
    cum = np.cumsum(weights[order]) / np.sum(weights)
    idx = int(np.searchsorted(cum, percentile / 100.0))
    return float(distances[order][min(idx, distances.size - 1)])


def _hausdorff_from(
    sd: SurfaceDistances, percentile: float, percentile_mode: PercentileMode, surface: Surface
) -> float:
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
    ref, pred = _check_pair(reference, prediction)
    sp = _spacing(spacing, ref.ndim)
    sd = _surface_distances(ref, pred, sp, surface)
    if sd is None:
        return _empty_value(
            "hd",
            both=not ref.any() and not pred.any(),
            empty_both=empty_both,
            empty_one=empty_one,
            worst_distance=_worst_distance(ref.shape, sp),
        )
    return _hausdorff_from(sd, percentile, percentile_mode, surface)


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


def _nsd_from(sd: SurfaceDistances, tolerance_mm: float) -> float:
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
    ref, pred = _check_pair(reference, prediction)
    sp = _spacing(spacing, ref.ndim)
    sd = _surface_distances(ref, pred, sp, surface, bound=_nsd_bound(tolerance_mm))
    if sd is None:
        return _empty_value(
            "nsd",
            both=not ref.any() and not pred.any(),
            empty_both=empty_both,
            empty_one=empty_one,
            worst_distance=0.0,
        )
    return _nsd_from(sd, tolerance_mm)


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
    sp = _spacing(spacing, ref_map.ndim)
    worst = _worst_distance(ref_map.shape, sp)
    out = {name: np.empty(len(labels)) for name in SEGMENTATION_METRICS}
    for i, label in enumerate(labels):
        ref, pred = ref_map == label, pred_map == label
        opts = {"empty_both": c.empty_both, "empty_one": c.empty_one}
        out["dice"][i] = dice(ref, pred, **opts)  # type: ignore[arg-type]
        out["iou"][i] = iou(ref, pred, **opts)  # type: ignore[arg-type]
        sd = _surface_distances(ref, pred, sp, c.surface)
        if sd is None:
            both = not ref.any() and not pred.any()
            for name in ("hd", "hd95", "nsd"):
                out[name][i] = _empty_value(
                    name,
                    both=both,
                    empty_both=c.empty_both,
                    empty_one=c.empty_one,
                    worst_distance=worst,
                )
            continue
        out["hd"][i] = _hausdorff_from(sd, 100.0, c.percentile_mode, c.surface)
        out["hd95"][i] = _hausdorff_from(sd, 95.0, c.percentile_mode, c.surface)
        out["nsd"][i] = _nsd_from(sd, c.nsd_tolerance_mm)
    return out


def _nanmean(values: FloatArray, axis: int) -> FloatArray:
    """Mean ignoring NaN, NaN where everything is NaN (without numpy's warning)."""
    valid = ~np.isnan(values)
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan))


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
        return float(_nanmean(_nanmean(v, axis=1), axis=0))
    return float(_nanmean(_nanmean(v, axis=0), axis=0))


def aggregate_resampled(
    values: npt.ArrayLike, indices: npt.NDArray[np.intp], *, aggregation: Aggregation = "case"
) -> FloatArray:
    """:func:`aggregate` for every row of case ``indices`` (shape ``(n_samples, n_cases)``)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if aggregation == "case":
        return _nanmean(_nanmean(v, axis=1)[indices], axis=1)
    return _nanmean(_nanmean(v[indices], axis=1), axis=1)


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
