"""What the file-format readers share: parameters, paths, SimpleITK images and their checks.

SimpleITK reads every volume format MedArena takes (NIfTI, MetaImage, DICOM series) and gives
spacing, origin and direction the same way for all of them, so geometry is handled once, here.
Every problem becomes a :class:`DatasetError` naming the file or case and how to fix it; readers
raise before returning anything, so a bad dataset never reaches the cache.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk  # noqa: N813  (the field's name for it)

from medarena.exceptions import DatasetError, TaskSpecError
from medarena.tasks.preprocessing import Volume, preprocess, stack_shapes
from medarena.tasks.readers._arrays import CaseArrays, Lesions
from medarena.tasks.spec import PreprocessingSpec

_UNSET_VARIABLE = re.compile(r"\$\{?(\w+)")
_COLLAPSE = sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX


def check_params(
    params: Mapping[str, Any], *, reader: str, required: Sequence[str], optional: Sequence[str]
) -> None:
    """Refuse missing and unknown ``dataset.params`` keys (a typo would silently be ignored)."""
    known = [*required, *optional]
    missing = [k for k in required if k not in params]
    unknown = sorted(set(params) - set(known))
    if missing or unknown:
        problems = [f"missing {missing}"] if missing else []
        problems += [f"unknown {unknown}"] if unknown else []
        raise TaskSpecError(
            f"dataset.params of reader {reader!r}: {' and '.join(problems)}; "
            f"the reader takes {known} (see docs/tasks.md)"
        )


def expand_path(value: str, *, key: str, base: Path | None = None) -> Path:
    """``~`` and ``$VARS`` expanded; relative paths taken from ``base`` (or the working folder)."""
    expanded = os.path.expandvars(Path(str(value)).expanduser())
    unset = _UNSET_VARIABLE.search(expanded)
    if unset:
        raise DatasetError(
            f"dataset.params.{key} is {value!r} but the environment variable "
            f"{unset.group(1)} is not set; set it to where your copy of the data lies"
        )
    path = Path(expanded)
    return base / path if base is not None and not path.is_absolute() else path


def require_dir(path: Path, *, key: str, how_to_get: str) -> Path:
    """``path`` if it is a folder, else an error naming it and how to get the data."""
    if not path.is_dir():
        raise DatasetError(
            f"data folder not found: {path} (dataset.params.{key}). {how_to_get} "
            "Then run `medarena tasks prepare NAME`."
        )
    return path


def require_file(path: Path, *, key: str, how_to_get: str) -> Path:
    """``path`` if it is a file, else an error naming it and how to get it."""
    if not path.is_file():
        raise DatasetError(f"file not found: {path} (dataset.params.{key}). {how_to_get}")
    return path


def sitk_message(exc: RuntimeError) -> str:
    """The useful last line of a SimpleITK exception, without its C++ source location."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = lines[-1] if lines else "unreadable"
    return re.sub(r"^(sitk|itk)::ERROR:\s*", "", last)


def read_image(path: Path, *, case: str, what: str = "image") -> sitk.Image:
    """The image in ``path``; a missing or corrupt file names the case and the file."""
    if not path.is_file():
        raise DatasetError(f"case {case!r}: {what} file not found: {path}")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise DatasetError(
            f"case {case!r}: cannot read {what} file {path}: {sitk_message(exc)}. The file is "
            "corrupt or truncated: download or convert it again"
        ) from exc


def _array_order(values: Sequence[float], ndim: int) -> str:
    return "(" + ", ".join(f"{v:g}" for v in list(values)[:ndim][::-1]) + ")"


def check_same_grid(image: sitk.Image, label: sitk.Image, *, case: str, label_path: Path) -> None:
    """The label map must lie on its image's voxel grid: same shape, spacing, origin, direction."""
    ndim = label.GetDimension()
    shape_i, shape_l = image.GetSize()[:ndim], label.GetSize()
    spacing_i, spacing_l = image.GetSpacing()[:ndim], label.GetSpacing()
    fix = "re-export the label map on the voxel grid of its image"
    if image.GetDimension() not in (ndim, ndim + 1) or shape_i != shape_l:
        raise DatasetError(
            f"case {case!r}: label map {label_path} has shape {_array_order(shape_l, ndim)} but "
            f"its image has {_array_order(shape_i, ndim)} (array order); {fix}"
        )
    if not np.allclose(spacing_i, spacing_l, rtol=1e-4, atol=1e-5):
        raise DatasetError(
            f"case {case!r}: label map {label_path} has spacing {_array_order(spacing_l, ndim)} "
            f"mm but its image has {_array_order(spacing_i, ndim)} mm; {fix}"
        )
    d = image.GetDimension()
    direction_i = np.array(image.GetDirection()).reshape(d, d)[:ndim, :ndim]
    tolerance = 0.01 * min(spacing_i)
    if not np.allclose(image.GetOrigin()[:ndim], label.GetOrigin(), atol=tolerance) or not (
        np.allclose(direction_i, np.array(label.GetDirection()).reshape(ndim, ndim), atol=1e-4)
    ):
        raise DatasetError(
            f"case {case!r}: label map {label_path} has origin or direction "
            f"{label.GetOrigin()} {label.GetDirection()} but its image has "
            f"{image.GetOrigin()[:ndim]} {tuple(direction_i.ravel())}; {fix}"
        )


def _axis_aligned(image: sitk.Image, *, interpolator: int) -> sitk.Image:
    """``image`` with an identity direction: axes permuted and flipped to LPS where that is
    enough, resampled onto an axis-aligned grid covering it where the image is oblique."""
    d = image.GetDimension()
    if d == 3:
        image = sitk.DICOMOrient(image, "LPS")
    if np.allclose(np.array(image.GetDirection()).reshape(d, d), np.eye(d), atol=1e-4):
        return image
    corners = np.array(
        [
            image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
            for corner in itertools.product(*[(0, n - 1) for n in image.GetSize()])
        ]
    )
    low, high = corners.min(axis=0), corners.max(axis=0)
    spacing = np.array(image.GetSpacing())
    size = (np.floor((high - low) / spacing + 1e-6) + 1).astype(int)
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetSpacing(image.GetSpacing())
    grid.SetOrigin([float(v) for v in low])
    fill = float(sitk.GetArrayViewFromImage(image).min())
    if interpolator == sitk.sitkNearestNeighbor:
        fill = 0.0
    return sitk.Resample(image, grid, sitk.Transform(), interpolator, fill)


def _channels(image: sitk.Image) -> list[sitk.Image]:
    """A 4-D image (several modalities, last ITK axis) as one 3-D image per channel."""
    if image.GetDimension() < 4:
        return [image]
    size = list(image.GetSize())
    return [sitk.Extract(image, [*size[:3], 0], [0, 0, 0, c], _COLLAPSE) for c in range(size[3])]


def label_array(label: sitk.Image, *, case: str, path: Path) -> npt.NDArray[np.integer]:
    """The label map as non-negative integers (uint8 where they fit, else int16)."""
    values = sitk.GetArrayFromImage(label)
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        raise DatasetError(
            f"case {case!r}: label map {path} holds non-integer values; label maps must hold "
            "class indices (0 = background)"
        )
    if values.size and (values.min() < 0 or values.max() > np.iinfo(np.int16).max):
        raise DatasetError(
            f"case {case!r}: label map {path} holds values outside 0..32767 "
            f"({values.min()}..{values.max()}); label maps must hold class indices"
        )
    return values.astype(np.uint8 if values.max(initial=0) < 256 else np.int16)


def to_volume(
    image: sitk.Image,
    label: tuple[sitk.Image, Path] | None,
    preprocessing: PreprocessingSpec,
    *,
    case: str,
) -> Volume:
    """A SimpleITK image (and its label map, read from a path, on the image's grid) as an
    axis-aligned, preprocessed :class:`Volume`."""
    channels = [_axis_aligned(c, interpolator=sitk.sitkLinear) for c in _channels(image)]
    first = channels[0]
    labels = None
    if label is not None:
        aligned = _axis_aligned(label[0], interpolator=sitk.sitkNearestNeighbor)
        labels = label_array(aligned, case=case, path=label[1])
    volume = Volume(
        image=np.stack([sitk.GetArrayFromImage(c) for c in channels]).astype(np.float32),
        label=labels,
        spacing=np.array(first.GetSpacing(), dtype=np.float64)[::-1].copy(),
        origin=np.array(first.GetOrigin(), dtype=np.float64)[::-1].copy(),
    )
    return preprocess(volume, preprocessing)


def assemble(
    case_ids: Sequence[str],
    groups: Sequence[str],
    volumes: Sequence[Volume],
    *,
    labels: npt.NDArray[np.integer] | None = None,
    lesions: Lesions | None = None,
    predefined_split: Sequence[str] | None = None,
) -> CaseArrays:
    """Stack preprocessed cases; ``labels`` default to the volumes' label maps."""
    if not volumes:
        raise DatasetError("no cases found; check dataset.params (see docs/tasks.md)")
    done = list(volumes)
    stack_shapes(case_ids, done)
    if labels is None:
        maps = [v.label for v in done]
        missing = [c for c, m in zip(case_ids, maps, strict=True) if m is None]
        if missing:
            raise DatasetError(f"case(s) {missing} have no label map")
        labels = np.stack([m for m in maps if m is not None])
    return CaseArrays(
        case_ids=np.array(case_ids, dtype=str),
        groups=np.array(groups, dtype=str),
        images=np.stack([v.image for v in done]).astype(np.float32),
        labels=labels,
        spacing=np.stack([v.spacing for v in done]),
        origin=np.stack([v.origin for v in done]),
        lesions=lesions,
        predefined_split=None if predefined_split is None else np.array(predefined_split, str),
    )
