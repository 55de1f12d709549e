"""Synthetic CT volumes: abdominal organs for 3D segmentation, lung nodules for detection.

Volumes are generated per case from a seed, in Hounsfield units with noise, and windowed to
[0, 1]. Spacing is anisotropic (thick slices), as in clinical CT, and every volume has its own
origin in world millimetres, so that metrics in mm and LUNA16-style world coordinates are
exercised for real.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from medarena.tasks.readers._arrays import CaseArrays, Lesions, voxel_to_world
from medarena.tasks.spec import PreprocessingSpec

FloatArray = npt.NDArray[np.float64]


def _grid_mm(shape: tuple[int, int, int], spacing: FloatArray) -> tuple[FloatArray, ...]:
    """Voxel-centre coordinates in mm (array order z, y, x) relative to voxel 0."""
    zz, yy, xx = np.indices(shape, dtype=np.float64)
    return zz * spacing[0], yy * spacing[1], xx * spacing[2]


def _ellipsoid(
    grid: tuple[FloatArray, ...], centre: FloatArray, radii: FloatArray
) -> npt.NDArray[np.bool_]:
    d = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    return np.asarray(d <= 1.0)


def _window(hu: FloatArray, level: float, width: float) -> npt.NDArray[np.float32]:
    return np.clip((hu - (level - width / 2)) / width, 0.0, 1.0).astype(np.float32)


class _Setup(NamedTuple):
    n: int
    shape: tuple[int, int, int]
    spacing: FloatArray
    seed: int
    noise_hu: float
    rng: np.random.Generator
    grid: tuple[FloatArray, ...]
    extent: FloatArray


def _setup(params: dict[str, Any], *, noise_hu: float) -> _Setup:
    """What both generators start from: the reader's parameters (``noise_hu`` the default noise),
    a generator seeded with ``seed``, the voxel grid in mm and the volume's extent in mm."""
    n = int(params.get("n_cases", 60))
    shape = tuple(int(v) for v in params.get("shape", [16, 32, 32]))
    spacing = np.asarray(params.get("spacing", [3.0, 1.5, 1.5]), dtype=np.float64)
    if len(shape) != 3 or spacing.shape != (3,):
        raise ValueError("shape and spacing need three values each (z, y, x)")
    shape3 = (shape[0], shape[1], shape[2])
    seed = int(params.get("seed", 0))
    return _Setup(
        n,
        shape3,
        spacing,
        seed,
        float(params.get("noise_hu", noise_hu)),
        np.random.default_rng(seed),
        _grid_mm(shape3, spacing),
        np.asarray(shape3) * spacing,
    )


def synthetic_ct_volumes(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """3D liver-and-lesion segmentation: labels 0 background, 1 liver, 2 lesion.

    Each volume holds a body, an ellipsoidal liver and zero to three spherical hypodense lesions
    (radius 3-8 mm); a quarter of the volumes have no lesion.
    """
    n, shape, spacing, _, noise_hu, rng, grid, extent = _setup(params, noise_hu=15.0)
    images = np.empty((n, 1, *shape), dtype=np.float32)
    labels = np.zeros((n, *shape), dtype=np.uint8)
    for i in range(n):
        hu = np.full(shape, -1000.0)
        body = _ellipsoid(grid, extent / 2, np.array([1e6, 0.42, 0.47]) * np.r_[1, extent[1:]])
        hu[body] = 40.0
        centre = extent / 2 + rng.normal(0, 0.04, 3) * extent
        centre[2] -= 0.12 * extent[2]
        radii = rng.uniform(0.28, 0.36, 3) * extent
        liver = _ellipsoid(grid, centre, radii) & body
        hu[liver] = 60.0
        labels[i][liver] = 1
        for _ in range(rng.choice(4, p=[0.25, 0.35, 0.25, 0.15])):
            radius = rng.uniform(3.0, 8.0)
            offset = rng.uniform(-0.5, 0.5, 3) * radii
            lesion = _ellipsoid(grid, centre + offset, np.full(3, radius)) & liver
            hu[lesion] = 10.0
            labels[i][lesion] = 2
        hu += rng.normal(0, noise_hu, shape)
        images[i, 0] = _window(hu, 40.0, 400.0)
    return CaseArrays(
        case_ids=np.array([f"volume-{i:04d}" for i in range(n)]),
        groups=np.array([f"patient-{i:04d}" for i in range(n)]),
        images=images,
        labels=labels,
        spacing=np.tile(spacing, (n, 1)),
        origin=np.tile(-extent / 2, (n, 1)),
    )


def synthetic_lung_nodules(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """3D nodule detection in chest CT patches, annotated LUNA16-style in world millimetres.

    Each patch holds lung parenchyma (about -850 HU) with vessels (thin bright tubes, the usual
    false positives), and zero to three solid nodules of 4-12 mm diameter (about 30 HU) with a
    soft edge. Origins differ per scan; annotations are nodule centres (x, y, z) and diameters.
    """
    n, shape, spacing, seed, noise_hu, rng, grid, extent = _setup(params, noise_hu=60.0)
    images = np.empty((n, 1, *shape), dtype=np.float32)
    origins = np.empty((n, 3))
    case_index: list[int] = []
    centres: list[FloatArray] = []
    diameters: list[float] = []
    for i in range(n):
        hu = np.full(shape, -850.0)
        for _ in range(rng.integers(2, 5)):  # vessels: tubes along a random in-plane direction
            angle = rng.uniform(0, np.pi)
            point = rng.uniform(0.1, 0.9, 3) * extent
            direction = np.array([rng.uniform(-0.3, 0.3), np.sin(angle), np.cos(angle)])
            direction /= np.linalg.norm(direction)
            rel = np.stack([g - p for g, p in zip(grid, point, strict=True)])
            along = np.tensordot(direction, rel, axes=1)
            dist2 = np.sum(rel**2, axis=0) - along**2
            hu = np.maximum(hu, -850.0 + 800.0 * np.exp(-dist2 / (2 * rng.uniform(0.8, 1.5) ** 2)))
        for _ in range(rng.choice(4, p=[0.2, 0.4, 0.25, 0.15])):
            diameter = rng.uniform(4.0, 12.0)
            centre = rng.uniform(0.15, 0.85, 3) * extent
            d = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
            nodule = 1.0 / (1.0 + np.exp((d - diameter / 2) / 0.6))
            hu = np.maximum(hu, -850.0 + 880.0 * nodule)
            case_index.append(i)
            centres.append(centre / spacing)
            diameters.append(diameter)
        origins[i] = -extent / 2 + rng.normal(0, 20.0, 3)
        hu += rng.normal(0, noise_hu, shape)
        images[i, 0] = _window(hu, -600.0, 1500.0)
    index = np.asarray(case_index, dtype=np.intp)
    voxels = np.asarray(centres).reshape(-1, 3)
    world = voxel_to_world(voxels, spacing, origins[index]) if len(index) else np.zeros((0, 3))
    return CaseArrays(
        case_ids=np.array([f"1.3.6.1.4.1.14519.5.2.1.{seed}.{i:04d}" for i in range(n)]),
        groups=np.array([f"patient-{i:04d}" for i in range(n)]),
        images=images,
        labels=np.bincount(index, minlength=n).astype(np.int64),
        spacing=np.tile(spacing, (n, 1)),
        origin=origins,
        lesions=Lesions(
            case_index=index,
            center_xyz=world,
            diameter_mm=np.asarray(diameters, dtype=np.float64),
            excluded=np.zeros(len(index), dtype=bool),
        ),
    )
