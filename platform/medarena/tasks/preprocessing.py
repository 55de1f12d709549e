"""A task's preprocessing applied to one case: resample, window, normalize, crop or pad.

Every step keeps the case's geometry true: ``spacing`` and ``origin`` (array axis order, mm, the
origin being the centre of voxel 0 as in ITK) are updated with the voxels, so that
:func:`~medarena.tasks.readers.voxel_to_world` still gives the right millimetres afterwards and
detection findings and surface distances stay where they were. Images are ``(C, *spatial)``
float32, label maps ``(*spatial)`` integers; cases are assumed axis-aligned (readers reorient
them first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk  # noqa: N813  (the field's name for it)

from medarena.exceptions import DatasetError
from medarena.tasks.spec import PreprocessingSpec

FloatArray = npt.NDArray[np.float64]
LabelArray = npt.NDArray[np.integer]


@dataclass(frozen=True)
class Volume:
    """One case's image, optional label map and geometry, in array axis order."""

    image: npt.NDArray[np.float32]
    label: LabelArray | None
    spacing: FloatArray
    origin: FloatArray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape[1:])


def _to_sitk(array: npt.NDArray[np.generic], spacing: FloatArray, origin: FloatArray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in spacing[::-1]])
    image.SetOrigin([float(o) for o in origin[::-1]])
    return image


def resample(volume: Volume, spacing: Sequence[float]) -> Volume:
    """``volume`` on a grid of voxel size ``spacing`` (array order) over the same extent.

    The origin (centre of the first voxel) stays; the size becomes ``round(extent / spacing)``.
    Images are interpolated linearly, label maps by nearest neighbour.
    """
    target = np.asarray(spacing, dtype=np.float64)
    if target.shape != volume.spacing.shape:
        raise DatasetError(
            f"preprocessing.spacing {list(spacing)} has {len(target)} values but the images are "
            f"{len(volume.spacing)}-D; give one spacing per array axis"
        )
    size = np.maximum(np.round(np.array(volume.shape) * volume.spacing / target), 1).astype(int)
    grid = _to_sitk(np.zeros(size.tolist(), np.uint8), target, volume.origin)

    def onto_grid(array: npt.NDArray[Any], interpolator: int) -> npt.NDArray[Any]:
        moved = sitk.Resample(
            _to_sitk(array, volume.spacing, volume.origin), grid, sitk.Transform(), interpolator
        )
        return np.asarray(sitk.GetArrayFromImage(moved))

    channels = [onto_grid(c, sitk.sitkLinear) for c in volume.image]
    label = None if volume.label is None else onto_grid(volume.label, sitk.sitkNearestNeighbor)
    return Volume(
        image=np.stack(channels).astype(np.float32),
        label=label,
        spacing=target,
        origin=volume.origin.copy(),
    )


def window(image: npt.NDArray[np.float32], level: float, width: float) -> npt.NDArray[np.float32]:
    """A CT intensity window ``[level - width/2, level + width/2]`` mapped to [0, 1], clipped."""
    low = level - width / 2.0
    return np.asarray(np.clip((image - low) / width, 0.0, 1.0), dtype=np.float32)


def normalize(image: npt.NDArray[np.float32], method: str) -> npt.NDArray[np.float32]:
    """Per-image, per-channel ``zscore`` (mean 0, sd 1) or ``minmax`` (to [0, 1]) rescaling.

    A constant channel becomes zeros rather than NaN.
    """
    if method == "none":
        return image
    axes = tuple(range(1, image.ndim))
    x = image.astype(np.float64)
    if method == "zscore":
        centre, scale = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
    else:
        centre = x.min(axis=axes, keepdims=True)
        scale = x.max(axis=axes, keepdims=True) - centre
    return np.asarray((x - centre) / np.where(scale > 0, scale, 1.0), dtype=np.float32)


def crop_or_pad(volume: Volume, size: Sequence[int]) -> Volume:
    """``volume`` cropped or padded around its centre to ``size`` (array order).

    Images are padded with each channel's minimum, label maps with background (0); the origin
    moves by the voxels removed or added before the first one.
    """
    if len(size) != len(volume.shape):
        raise DatasetError(
            f"preprocessing.size {list(size)} has {len(size)} values but the images are "
            f"{len(volume.shape)}-D; give one size per array axis"
        )
    before = [(old - new) // 2 for old, new in zip(volume.shape, size, strict=True)]
    crop = tuple(
        slice(max(b, 0), max(b, 0) + min(old, new))
        for b, old, new in zip(before, volume.shape, size, strict=True)
    )
    pad = [
        (max(-b, 0), new - min(old, new) - max(-b, 0))
        for b, old, new in zip(before, volume.shape, size, strict=True)
    ]
    cropped = volume.image[(slice(None), *crop)]
    image = np.stack(
        [np.pad(c, pad, constant_values=c.min() if c.size else 0) for c in cropped]
    ).astype(np.float32)
    label = None if volume.label is None else np.pad(volume.label[crop], pad)
    origin = volume.origin + np.asarray(before, dtype=np.float64) * volume.spacing
    return replace(volume, image=image, label=label, origin=origin)


def preprocess(volume: Volume, spec: PreprocessingSpec) -> Volume:
    """``spec`` applied to one case in its documented order: spacing, window, normalize, size."""
    if spec.spacing is not None:
        volume = resample(volume, spec.spacing)
    image = volume.image
    if spec.window is not None:
        image = window(image, *spec.window)
    image = normalize(image, spec.normalize)
    volume = replace(volume, image=image)
    if spec.size is not None:
        volume = crop_or_pad(volume, spec.size)
    return volume


def stack_shapes(case_ids: Sequence[str], volumes: Sequence[Volume]) -> tuple[int, ...]:
    """The one image shape of all cases, or an error naming two cases that differ."""
    first = volumes[0].shape
    for case_id, volume in zip(case_ids, volumes, strict=True):
        if volume.shape != first:
            raise DatasetError(
                f"case {case_id!r} has shape {volume.shape} after preprocessing but case "
                f"{case_ids[0]!r} has {first}; set preprocessing.size (and preprocessing.spacing) "
                "so that every case comes out with one shape"
            )
    return first
