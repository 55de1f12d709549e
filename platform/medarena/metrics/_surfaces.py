"""The surfaces of two masks and the distances between them, for the distance metrics.

They work in the bounding box of the two masks' union, padded with one voxel of background:
every surface element of either mask lies in that box, and the padding gives foreground on the
box's faces the background neighbour that the zeros outside the image give it, so the surfaces
found there are those of the whole image, and so are the Euclidean distances between them. Each
mask is read once in full to find the box; nothing else touches the rest of the image.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import distance_transform_edt
from scipy.spatial import cKDTree

from medarena.metrics._masks import BoolArray, FloatArray, IntArray, Spacing, as_spacing, check_pair
from medarena.metrics._surfel_tables import NEIGHBOUR_CODE_TO_NORMALS
from medarena.metrics.conventions import Surface


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


def distances_between(
    ref: BoolArray, pred: BoolArray, spacing: FloatArray, surface: Surface, bound: float = math.inf
) -> SurfaceDistances | None:
    """:func:`surface_distances` of masks checked by :func:`check_pair`; with a finite ``bound``
    (NSD), distances beyond it may be infinity."""
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
    ref, pred = check_pair(reference, prediction)
    return distances_between(ref, pred, as_spacing(spacing, ref.ndim), surface)
