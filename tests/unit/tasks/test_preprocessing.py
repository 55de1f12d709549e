"""Preprocessing keeps every voxel at its millimetres: resampling, cropping and padding."""

from __future__ import annotations

import numpy as np
import pytest

from medarena.exceptions import DatasetError
from medarena.tasks.preprocessing import (
    Volume,
    crop_or_pad,
    normalize,
    preprocess,
    resample,
    window,
)
from medarena.tasks.readers import voxel_to_world
from medarena.tasks.spec import PreprocessingSpec


def _volume() -> Volume:
    image = np.zeros((1, 10, 12, 14), np.float32)
    label = np.zeros((10, 12, 14), np.uint8)
    image[0, 4:7, 5:8, 6:9] = 100.0
    label[4:7, 5:8, 6:9] = 2
    return Volume(
        image, label, spacing=np.array([3.0, 1.0, 0.5]), origin=np.array([5.0, -2.0, 7.0])
    )


def _centre_mm(volume: Volume) -> np.ndarray:  # type: ignore[type-arg]
    assert volume.label is not None
    centre = np.argwhere(volume.label == 2).mean(axis=0)
    return voxel_to_world(centre, volume.spacing, volume.origin)


def test_resampling_keeps_origin_and_world_positions() -> None:
    v = _volume()
    r = resample(v, [1.5, 1.0, 1.0])
    assert r.shape == (20, 12, 7) and r.image.dtype == np.float32
    np.testing.assert_array_equal(r.origin, v.origin)
    assert set(np.unique(r.label).tolist()) == {0, 2}  # nearest neighbour: no new labels
    np.testing.assert_allclose(_centre_mm(r), _centre_mm(v), atol=0.75)  # half a new voxel


@pytest.mark.parametrize("size", [[6, 8, 10], [14, 16, 18], [7, 12, 20]])
def test_crop_and_pad_move_the_origin(size: list[int]) -> None:
    v = _volume()
    c = crop_or_pad(v, size)
    assert c.shape == tuple(size)
    np.testing.assert_allclose(_centre_mm(c), _centre_mm(v))
    assert c.image.min() == 0.0 and c.label is not None and c.label.dtype == np.uint8


def test_padding_uses_the_image_minimum() -> None:
    v = _volume()
    v = Volume(v.image - 1000.0, v.label, v.spacing, v.origin)
    assert crop_or_pad(v, [12, 12, 14]).image[0, 0].min() == -1000.0


def test_window_and_normalize() -> None:
    hu = np.array([[-1000.0, -160.0, 40.0, 240.0, 3000.0]], np.float32)
    np.testing.assert_allclose(window(hu, 40.0, 400.0), [[0.0, 0.0, 0.5, 1.0, 1.0]])
    z = normalize(hu, "zscore")
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1.0) < 1e-5
    np.testing.assert_allclose(normalize(hu, "minmax")[0, [0, -1]], [0.0, 1.0])
    np.testing.assert_array_equal(normalize(np.full((2, 3), 7.0, np.float32), "zscore"), 0.0)
    np.testing.assert_array_equal(normalize(hu, "none"), hu)


def test_preprocess_runs_the_steps_in_order() -> None:
    spec = PreprocessingSpec(spacing=[3.0, 2.0, 1.0], window=(50.0, 100.0), size=[8, 8, 8])
    out = preprocess(_volume(), spec)
    assert out.shape == (8, 8, 8) and out.image.min() >= 0.0 and out.image.max() <= 1.0
    np.testing.assert_allclose(_centre_mm(out), _centre_mm(_volume()), atol=1.0)


def test_wrong_number_of_axes_is_explained() -> None:
    with pytest.raises(DatasetError, match=r"preprocessing.spacing \[1.0, 1.0\] has 2 values"):
        resample(_volume(), [1.0, 1.0])
    with pytest.raises(DatasetError, match=r"preprocessing.size \[4\] has 1 values"):
        crop_or_pad(_volume(), [4])
