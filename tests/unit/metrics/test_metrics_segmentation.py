"""Segmentation metrics against MONAI, medpy and DeepMind's surface-distance, 2D and 3D,
isotropic and anisotropic spacing, and empty masks in each convention.

MONAI returns float32, so it is compared to a relative 1e-6; medpy and DeepMind compute in
float64 and are compared to 1e-9. Surface distances are computed in the bounding box of the two
masks; randomized cases check that this gives what the whole volume gives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import surface_distance as deepmind
import torch
from medpy.metric import binary as medpy_binary
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage
from scipy.spatial import cKDTree

from medarena.metrics import (
    SegmentationConventions,
    aggregate,
    case_scores,
    dice,
    hausdorff_distance,
    hd95,
    iou,
    normalized_surface_distance,
    surface_distances,
)
from medarena.metrics._surface_metrics import hausdorff_from, nsd_from
from medarena.metrics._surfaces import SurfaceDistances, _neighbour_codes, _surfel_weights

CASES = [
    ((32, 32, 32), (1.0, 1.0, 1.0)),
    ((28, 24, 20), (0.7, 1.3, 2.5)),
    ((40, 36), (0.5, 1.7)),
]


def _blob(rng: np.random.Generator, shape) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return noise > np.quantile(noise, 0.7)


def _ball(shape, centre, radius: float) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def _t(mask: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(mask[None, None].astype(np.float32))


def _pairs():
    for i, (shape, spacing) in enumerate(CASES):
        for seed in range(2):
            rng = np.random.default_rng(100 * i + seed)
            yield pytest.param(_blob(rng, shape), _blob(rng, shape), spacing, id=f"{shape}-{seed}")
    rng = np.random.default_rng(9)  # touching the image border
    a = np.zeros((20, 20, 20), bool)
    a[:8, :, 3:9] = True
    yield pytest.param(a, _blob(rng, (20, 20, 20)), (1.0, 2.0, 0.5), id="border")
    # small structures far from the origin of a large anisotropic volume
    shape, spacing = (48, 160, 150), (3.0, 0.7, 0.8)
    ref, pred = _ball(shape, (40, 141, 130), 4.5), _ball(shape, (41, 139, 131), 3.5)
    pred |= _ball(shape, (44, 150, 120), 2.0)  # and a small false positive nearby
    yield pytest.param(ref, pred, spacing, id="small-far")
    # both touching the far corner: faces on the volume's last row, column and slice
    shape = (30, 26, 34)
    ref = _ball(shape, (29, 25, 33), 6.0)
    pred = np.zeros(shape, bool)
    pred[22:, 20:, 27:] = True
    yield pytest.param(ref, pred, (0.9, 1.1, 2.0), id="border-corner")
    # far apart: the bounding box spans the volume, the surfaces are small
    shape = (40, 64, 60)
    ref, pred = _ball(shape, (3, 4, 5), 2.5), _ball(shape, (36, 60, 55), 3.0)
    yield pytest.param(ref, pred, (2.5, 0.6, 0.9), id="far-apart")
    yield pytest.param(pred, ref, (2.5, 0.6, 0.9), id="far-apart-swapped")


def _monai(fn, a, b, **kw) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(_t(b), _t(a), include_background=True, **kw).item())


@pytest.mark.parametrize(("ref", "pred", "spacing"), list(_pairs()))
def test_against_references(ref, pred, spacing) -> None:
    assert dice(ref, pred) == pytest.approx(_monai(compute_dice, ref, pred), rel=1e-6)
    expected_iou = np.sum(ref & pred) / np.sum(ref | pred)
    assert iou(ref, pred) == pytest.approx(expected_iou, abs=1e-12)
    for percentile in (None, 95):
        expected = _monai(compute_hausdorff_distance, ref, pred, percentile=percentile,
                          spacing=spacing)  # fmt: skip
        got = hausdorff_distance(ref, pred, spacing=spacing, percentile=percentile or 100)
        assert got == pytest.approx(expected, rel=1e-6)
    pooled = medpy_binary.hd95(pred, ref, voxelspacing=spacing)
    assert hd95(ref, pred, spacing=spacing, percentile_mode="pooled") == pytest.approx(
        pooled, abs=1e-9
    )
    for tol in (0.5, 1.0, 2.5):
        expected = _monai(compute_surface_dice, ref, pred, class_thresholds=[tol], spacing=spacing)
        got = normalized_surface_distance(ref, pred, spacing=spacing, tolerance_mm=tol)
        assert got == pytest.approx(expected, rel=1e-6)
        sd = deepmind.compute_surface_distances(ref, pred, spacing)
        got = normalized_surface_distance(
            ref, pred, spacing=spacing, tolerance_mm=tol, surface="surfel"
        )
        assert got == pytest.approx(deepmind.compute_surface_dice_at_tolerance(sd, tol), abs=1e-9)
    sd = deepmind.compute_surface_distances(ref, pred, spacing)
    robust = deepmind.compute_robust_hausdorff(sd, 95)
    assert hd95(ref, pred, spacing=spacing, surface="surfel") == pytest.approx(robust, abs=1e-9)


def _empty_and_full():
    a = np.zeros((16, 16, 16), bool)
    b = a.copy()
    b[4:9, 4:9, 4:9] = True
    return a, b


def test_both_empty_conventions() -> None:
    empty, _ = _empty_and_full()
    # MONAI: ignore_empty=False gives Dice 1; distances and NSD are NaN ("nan" convention)
    monai_dice = _monai(compute_dice, empty, empty, ignore_empty=False)
    assert dice(empty, empty) == monai_dice == 1.0
    assert np.isnan(_monai(compute_dice, empty, empty))
    assert np.isnan(dice(empty, empty, empty_both="nan"))
    assert np.isnan(_monai(compute_hausdorff_distance, empty, empty, percentile=95))
    assert np.isnan(hd95(empty, empty, empty_both="nan"))
    assert hd95(empty, empty) == 0.0
    assert np.isnan(_monai(compute_surface_dice, empty, empty, class_thresholds=[1.0]))
    assert np.isnan(normalized_surface_distance(empty, empty, empty_both="nan"))
    assert normalized_surface_distance(empty, empty) == 1.0


@pytest.mark.parametrize("flip", [False, True])
def test_one_empty_conventions(flip: bool) -> None:
    empty, full = _empty_and_full()
    ref, pred = (full, empty) if flip else (empty, full)
    spacing = (1.0, 2.0, 3.0)
    assert dice(ref, pred) == 0.0 == _monai(compute_dice, ref, pred, ignore_empty=False)
    # MONAI: the maximum over an all-infinite distance set is inf ("inf" convention); its
    # torch.quantile of infinities is NaN, so MONAI's HD95 is the "nan" convention.
    inf = _monai(compute_hausdorff_distance, ref, pred, spacing=spacing)
    assert hausdorff_distance(ref, pred, spacing=spacing, empty_one="inf") == inf == np.inf
    monai_hd95 = _monai(compute_hausdorff_distance, ref, pred, percentile=95, spacing=spacing)
    assert np.isnan(monai_hd95) and np.isnan(hd95(ref, pred, empty_one="nan"))
    diagonal = np.sqrt((16 * 1.0) ** 2 + (16 * 2.0) ** 2 + (16 * 3.0) ** 2)
    assert hd95(ref, pred, spacing=spacing) == pytest.approx(diagonal)
    assert np.isnan(hd95(ref, pred, empty_one="nan"))
    nsd = _monai(compute_surface_dice, ref, pred, class_thresholds=[1.0], spacing=spacing)
    assert normalized_surface_distance(ref, pred, spacing=spacing) == nsd == 0.0


def test_label_maps_per_class_and_aggregation() -> None:
    rng = np.random.default_rng(5)
    ref = np.zeros((24, 24, 24), np.int64)
    pred = np.zeros_like(ref)
    ref[_blob(rng, ref.shape)] = 1
    pred[_blob(rng, ref.shape)] = 1
    ref[2:6, 2:6, 2:6] = 2  # class 2 missing from the prediction
    conv = SegmentationConventions(nsd_tolerance_mm=2.0)
    scores = case_scores(ref, pred, labels=[1, 2, 3], spacing=(1, 1, 2), conventions=conv)
    assert scores["dice"][0] == pytest.approx(dice(ref == 1, pred == 1))
    assert scores["dice"][1] == 0.0 and scores["dice"][2] == 1.0  # class 3 absent from both
    assert scores["hd95"][0] == pytest.approx(hd95(ref == 1, pred == 1, spacing=(1, 1, 2)))
    values = np.array([[1.0, np.nan], [0.0, 0.5], [0.5, np.nan]])
    assert aggregate(values, aggregation="case") == pytest.approx((1.0 + 0.25 + 0.5) / 3)
    assert aggregate(values, aggregation="class") == pytest.approx((0.5 + 0.5) / 2)


def test_mismatched_shapes_and_spacing_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="spacing"):
        hd95(np.ones((3, 3)), np.ones((3, 3)), spacing=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("empty", ["reference", "prediction", "both"])
def test_empty_masks_in_a_large_anisotropic_volume(empty: str) -> None:
    shape, spacing = (40, 150, 140), (2.5, 0.7, 0.8)
    small, none = _ball(shape, (36, 140, 128), 3.0), np.zeros(shape, bool)
    ref, pred = {"reference": (none, small), "prediction": (small, none), "both": (none, none)}[
        empty
    ]
    diagonal = float(np.sqrt(np.sum((np.array(shape) * np.array(spacing)) ** 2)))
    conv = SegmentationConventions(empty_both="nan", empty_one="inf")
    scores = case_scores(ref.astype(np.int64), pred.astype(np.int64), labels=[1],
                         spacing=spacing, conventions=conv)  # fmt: skip
    monai_hd = _monai(compute_hausdorff_distance, ref, pred, spacing=spacing)
    for surface in ("voxel", "surfel"):
        assert surface_distances(ref, pred, spacing=spacing, surface=surface) is None
        kw = {"spacing": spacing, "surface": surface}
        if empty == "both":
            assert hausdorff_distance(ref, pred, **kw) == hd95(ref, pred, **kw) == 0.0
            assert normalized_surface_distance(ref, pred, **kw) == 1.0
            assert np.isnan(hd95(ref, pred, empty_both="nan", **kw))
            assert np.isnan(monai_hd) and np.isnan(scores["hd"][0])
        else:
            assert hausdorff_distance(ref, pred, **kw) == pytest.approx(diagonal)
            assert hd95(ref, pred, **kw) == pytest.approx(diagonal)
            assert normalized_surface_distance(ref, pred, **kw) == 0.0
            assert hausdorff_distance(ref, pred, empty_one="inf", **kw) == monai_hd == np.inf
            assert scores["hd"][0] == np.inf and scores["nsd"][0] == 0.0
    zero_size = np.zeros((0, 3, 3), bool)
    assert hd95(zero_size, zero_size) == 0.0


def _random_mask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Sparse noise in a random box, or a few balls anywhere (cut by the image border) or inside
    the image, or now and then nothing."""
    kind = rng.integers(4)
    mask = np.zeros(shape, bool)
    if kind == 0:
        lo = [int(rng.integers(0, n)) for n in shape]
        box = tuple(
            slice(a, int(rng.integers(a + 1, n + 1))) for a, n in zip(lo, shape, strict=True)
        )
        mask[box] = rng.random(mask[box].shape) < rng.uniform(0.01, 0.4)
        return mask
    if kind == 1 and rng.random() < 0.3:
        return mask
    for _ in range(rng.integers(1, 4)):
        radius = rng.uniform(0.5, 6.0)
        if kind == 1:
            centre = rng.uniform(-3, np.array(shape) + 3)
        else:
            centre = [
                rng.uniform(min(radius + 1, n / 2), max(n - radius - 2, n / 2)) for n in shape
            ]
        mask |= _ball(shape, centre, radius)
    return mask


def _uncropped(ref, pred, spacing, surface: str) -> tuple[SurfaceDistances, SurfaceDistances]:
    """Surfaces found in the whole image by scipy (zeros outside it), with two sets of distances:

    * "tree": MedArena's method written out: a k-d tree over the points in mm, placed as
      MedArena places them (grid indices from the first surface point on each axis, times
      spacing); for surfels, the distance to the point found recomputed from the integer offset
      as ``distance_transform_edt`` computes distances (DeepMind's rounding);
    * "edt": distance transforms of the whole image, as medpy and DeepMind.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    if surface == "voxel":
        ref_s, pred_s = ref ^ ndimage.binary_erosion(ref), pred ^ ndimage.binary_erosion(pred)
        w_ref, w_pred = np.ones(ref_s.sum()), np.ones(pred_s.sum())
    else:
        full, table = 2 ** (2**ref.ndim) - 1, _surfel_weights(sp)
        code_ref, code_pred = _neighbour_codes(np.pad(ref, 1)), _neighbour_codes(np.pad(pred, 1))
        ref_s = (code_ref != 0) & (code_ref != full)
        pred_s = (code_pred != 0) & (code_pred != full)
        w_ref, w_pred = table[code_ref[ref_s]], table[code_pred[pred_s]]
    origin = np.argwhere(ref_s | pred_s).min(axis=0)
    ref_i, pred_i = np.argwhere(ref_s) - origin, np.argwhere(pred_s) - origin

    def nearest(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        distance, index = cKDTree(target * sp, leafsize=32).query(source * sp)
        if surface == "voxel":
            return distance
        return np.sqrt(np.add.reduce(((source - target[index]) * sp).T ** 2, axis=0))

    tree = SurfaceDistances(nearest(ref_i, pred_i), nearest(pred_i, ref_i), w_ref, w_pred)
    edt = SurfaceDistances(
        ndimage.distance_transform_edt(~pred_s, sampling=sp)[ref_s],
        ndimage.distance_transform_edt(~ref_s, sampling=sp)[pred_s],
        w_ref,
        w_pred,
    )
    return tree, edt


_FIELDS = ("ref_to_pred", "pred_to_ref", "weights_ref", "weights_pred")


@pytest.mark.parametrize("seed", range(50))
def test_cropped_equals_uncropped(seed: int) -> None:
    """Random masks (2D and 3D, axes of 1 to 47 voxels, anisotropic, touching the border or not):
    what is computed in the bounding box equals, to the last bit, what the whole image gives,
    and does not change when the image grows around the masks."""
    rng = np.random.default_rng(seed)
    ndim = 2 if seed % 4 == 0 else 3
    shape = tuple(int(n) for n in rng.integers(1, 48 if ndim == 3 else 120, ndim))
    spacing = tuple(float(s) for s in rng.choice([0.36, 0.5, 0.7, 0.8, 1.0, 1.3, 2.5, 3.0], ndim))
    ref, pred = _random_mask(rng, shape), _random_mask(rng, shape)
    pads = [(int(a), int(b)) for a, b in rng.integers(0, 30, (ndim, 2))]
    big_ref, big_pred = np.pad(ref, pads), np.pad(pred, pads)
    if seed % 2:  # not C-contiguous
        big_ref, big_pred = np.asfortranarray(big_ref), np.asfortranarray(big_pred)
    tolerances = (0.0, min(spacing), 1.0, 2.5, float(np.hypot(spacing[0], spacing[-1])))
    for surface in ("voxel", "surfel"):
        got = surface_distances(ref, pred, spacing=spacing, surface=surface)
        big = surface_distances(big_ref, big_pred, spacing=spacing, surface=surface)
        if not ref.any() or not pred.any():
            assert got is None and big is None
            continue
        assert got is not None and big is not None
        tree, edt = _uncropped(ref, pred, spacing, surface)
        # MedArena: a k-d tree for voxels and for NSD, a distance transform for surfels' HD
        exact, other = (tree, edt) if surface == "voxel" else (edt, tree)
        for field in _FIELDS:
            assert np.array_equal(getattr(got, field), getattr(big, field))
            assert np.array_equal(getattr(got, field), getattr(exact, field))
            # the tree and the transform may pick different points at equal distances, whose
            # distances then differ in the last bit
            np.testing.assert_allclose(getattr(got, field), getattr(other, field), rtol=1e-13)
        kw = {"spacing": spacing, "surface": surface}
        for mask_pair in ((ref, pred), (big_ref, big_pred)):
            assert hausdorff_distance(*mask_pair, **kw) == hausdorff_from(
                exact, 100.0, "directed_max", surface
            )
            for mode in ("directed_max", "pooled"):
                assert hd95(*mask_pair, percentile_mode=mode, **kw) == hausdorff_from(
                    exact, 95.0, mode, surface
                )
            for tol in tolerances:
                assert normalized_surface_distance(*mask_pair, tolerance_mm=tol, **kw) == (
                    nsd_from(tree, tol)
                )
