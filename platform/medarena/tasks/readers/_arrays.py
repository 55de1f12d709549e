"""The in-memory form every reader produces, for all three task kinds.

Arrays are in array axis order: ``(y, x)`` for 2D and ``(z, y, x)`` for 3D, as numpy, SimpleITK's
``GetArrayFromImage`` and nibabel-after-transpose give them. ``spacing`` and ``origin`` follow the
same order; world coordinates of detection findings are ``(x, y, z)`` millimetres, as LUNA16
writes them (:func:`voxel_to_world` converts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Lesions:
    """Detection findings of every case: one row per finding, world (x, y, z) millimetres.

    ``excluded`` marks findings that are neither hits nor false positives (LUNA16's
    ``annotations_excluded.csv``).
    """

    case_index: npt.NDArray[np.intp]
    center_xyz: FloatArray
    diameter_mm: FloatArray
    excluded: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        m = len(self.case_index)
        if self.center_xyz.shape != (m, 3) or len(self.diameter_mm) != m or len(self.excluded) != m:
            raise ValueError("inconsistent lesion arrays")

    def subset(self, cases: npt.NDArray[np.intp]) -> Lesions:
        """The findings of ``cases`` (indices into the full case list), re-indexed 0..len-1."""
        new_index = np.full(int(self.case_index.max(initial=-1)) + 1, -1, dtype=np.intp)
        keep_cases = cases[cases < len(new_index)]
        new_index[keep_cases] = np.flatnonzero(cases < len(new_index))
        mapped = new_index[self.case_index] if len(self.case_index) else self.case_index
        keep = mapped >= 0
        return Lesions(
            case_index=mapped[keep],
            center_xyz=self.center_xyz[keep],
            diameter_mm=self.diameter_mm[keep],
            excluded=self.excluded[keep],
        )

    @staticmethod
    def empty() -> Lesions:
        return Lesions(
            case_index=np.zeros(0, np.intp),
            center_xyz=np.zeros((0, 3)),
            diameter_mm=np.zeros(0),
            excluded=np.zeros(0, bool),
        )


@dataclass(frozen=True)
class CaseArrays:
    """All cases of a dataset after preprocessing: same image shape for every case.

    ``labels`` depends on the kind: class indices ``(n,)`` for classification, integer label maps
    ``(n, *spatial)`` for segmentation, and the number of included findings per case ``(n,)``
    for detection (the findings themselves are in ``lesions``). ``groups`` names each case's
    patient, so that splits keep a patient's cases together. ``predefined_split`` is the split a
    dataset ships with (``train``, ``val`` or ``test`` per case, as MedMNIST's), used by
    ``split.method: predefined``.
    """

    case_ids: npt.NDArray[np.str_]
    groups: npt.NDArray[np.str_]
    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.integer]
    spacing: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    origin: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    lesions: Lesions | None = None
    predefined_split: npt.NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        n = len(self.case_ids)
        sizes = {len(self.groups), len(self.images), len(self.labels)}
        if self.predefined_split is not None:
            sizes.add(len(self.predefined_split))
        if sizes != {n}:
            raise ValueError(f"inconsistent case counts: {n} ids, sizes {sorted(sizes)}")
        if len(set(self.case_ids.tolist())) != n:
            raise ValueError("duplicated case ids")
        ndim = self.images.ndim - 2
        if self.spacing.size == 0:
            object.__setattr__(self, "spacing", np.ones((n, ndim)))
        if self.origin.size == 0:
            object.__setattr__(self, "origin", np.zeros((n, ndim)))
        if self.spacing.shape != (n, ndim) or self.origin.shape != (n, ndim):
            raise ValueError(f"spacing and origin must have shape ({n}, {ndim})")

    @property
    def strata(self) -> npt.NDArray[np.int64]:
        """What a stratified split balances: the class, or whether a case has any finding."""
        if self.labels.ndim == 1 and self.lesions is None:
            return np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim == 1:
            return np.asarray(self.labels > 0, dtype=np.int64)
        flat = self.labels.reshape(len(self.labels), -1)
        return np.asarray(flat.max(axis=1) > 0, dtype=np.int64)


def voxel_to_world(
    index: npt.ArrayLike, spacing: npt.ArrayLike, origin: npt.ArrayLike
) -> FloatArray:
    """Array-order voxel indices ``(..., z, y, x)`` to world ``(..., x, y, z)`` millimetres.

    Assumes axis-aligned images (identity direction), as LUNA16's volumes are.
    """
    idx = np.asarray(index, dtype=np.float64)
    world_zyx = np.asarray(origin, dtype=np.float64) + idx * np.asarray(spacing, dtype=np.float64)
    return world_zyx[..., ::-1]


def world_to_voxel(xyz: npt.ArrayLike, spacing: npt.ArrayLike, origin: npt.ArrayLike) -> FloatArray:
    """World ``(..., x, y, z)`` millimetres to array-order voxel indices ``(..., z, y, x)``."""
    zyx = np.asarray(xyz, dtype=np.float64)[..., ::-1]
    return (zyx - np.asarray(origin, dtype=np.float64)) / np.asarray(spacing, dtype=np.float64)
