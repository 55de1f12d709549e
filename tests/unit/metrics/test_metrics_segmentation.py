"""Segmentation metrics against MONAI, medpy and DeepMind's surface-distance, 2D and 3D,
isotropic and anisotropic spacing, and empty masks in each convention.

MONAI returns float32, so it is compared to a relative 1e-6; medpy and DeepMind compute in
float64 and are compared to 1e-9.
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

from medarena.metrics import (
    SegmentationConventions,
    aggregate,
    case_scores,
    dice,
    hausdorff_distance,
    hd95,
    iou,
    normalized_surface_distance,
)

CASES = [
    ((32, 32, 32), (1.0, 1.0, 1.0)),
    ((28, 24, 20), (0.7, 1.3, 2.5)),
    ((40, 36), (0.5, 1.7)),
]


def _blob(rng: np.random.Generator, shape) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return noise > np.quantile(noise, 0.7)


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
