"""Synthetic axial CT slices of the upper abdomen, for classification and segmentation.

Each slice is drawn from a seed: an elliptical body (fat rim, soft tissue), a liver, a vertebra,
and by class either no lesion, a cyst (round, hypodense, sharp), a hyperdense lesion (small,
bright) or metastases (several small hypodense nodules). Intensities are in Hounsfield units with
noise, then put through the abdominal window (W400/L40) to [0, 1], as CT models see them. The
same slices serve a lesion-type classification task and a liver-and-lesion segmentation task.
Vectorised over cases, so a thousand slices take well under a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.tasks.readers._arrays import CaseArrays
from medarena.tasks.spec import PreprocessingSpec

CLASSES = ("normal", "cyst", "hyperdense lesion", "metastases")

_AIR, _FAT, _SOFT, _LIVER, _BONE = -1000.0, -100.0, 40.0, 60.0, 700.0
_WINDOW_LOW, _WINDOW_HIGH = 40.0 - 200.0, 40.0 + 200.0
_MAX_METASTASES = 4
_FIELD_OF_VIEW_MM = 400.0

FloatArray = npt.NDArray[np.float64]


def _ellipse(
    yy: FloatArray, xx: FloatArray, cy: FloatArray, cx: FloatArray, ry: FloatArray, rx: FloatArray
) -> npt.NDArray[np.bool_]:
    """Masks of axis-aligned ellipses, one per case: (n,) parameters against an (S, S) grid."""
    dy = (yy - cy[:, None, None]) / ry[:, None, None]
    dx = (xx - cx[:, None, None]) / rx[:, None, None]
    return np.asarray(dy**2 + dx**2 <= 1.0)


def _disc_in_liver(
    rng: np.random.Generator,
    liver: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    radius: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Random centres inside each case's liver ellipse, kept a radius away from its border."""
    cy, cx, ry, rx = liver
    n = len(cy)
    angle = rng.uniform(0, 2 * np.pi, n)
    dist = np.sqrt(rng.uniform(0, 1, n)) * 0.6
    return cy + dist * np.maximum(ry - radius, 1) * np.sin(angle), cx + dist * np.maximum(
        rx - radius, 1
    ) * np.cos(angle)


def _render(
    params: dict[str, Any],
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Windowed images ``(n, S, S)``, lesion classes ``(n,)`` and label maps (0 background,
    1 liver, 2 lesion) of ``n_cases`` slices of ``image_size``² pixels drawn from ``seed``."""
    n = int(params.get("n_cases", 1000))
    size = int(params.get("image_size", 32))
    seed = int(params.get("seed", 0))
    noise_hu = float(params.get("noise_hu", 20.0))
    rng = np.random.default_rng(seed)

    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    s = float(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    body_c = (s / 2 + rng.normal(0, 0.03 * s, n), s / 2 + rng.normal(0, 0.03 * s, n))
    body_r = (rng.uniform(0.30, 0.36, n) * s, rng.uniform(0.40, 0.46, n) * s)
    body = _ellipse(yy, xx, *body_c, *body_r)
    inner = _ellipse(yy, xx, *body_c, body_r[0] - 0.05 * s, body_r[1] - 0.05 * s)
    liver_geo = (
        body_c[0] - rng.uniform(0.02, 0.08, n) * s,
        body_c[1] - rng.uniform(0.15, 0.20, n) * s,
        rng.uniform(0.17, 0.21, n) * s,
        rng.uniform(0.17, 0.22, n) * s,
    )
    liver = _ellipse(yy, xx, *liver_geo) & inner
    spine = _ellipse(
        yy, xx, body_c[0] + body_r[0] * 0.6, body_c[1], np.full(n, 0.06 * s), np.full(n, 0.06 * s)
    )

    hu = np.full((n, size, size), _AIR)
    hu[body] = _FAT
    hu[inner] = _SOFT
    hu[liver] = _LIVER
    hu[spine & inner] = _BONE

    segmentation = liver.astype(np.uint8)

    def add_lesions(
        mask_cases: npt.NDArray[np.bool_], r_lo: float, r_hi: float, value: float
    ) -> None:
        radius = rng.uniform(r_lo, r_hi, n) * s
        cy, cx = _disc_in_liver(rng, liver_geo, radius)
        lesion = _ellipse(yy, xx, cy, cx, radius, radius) & liver & mask_cases[:, None, None]
        hu[lesion] = value + rng.normal(0, 5.0, lesion.sum())
        segmentation[lesion] = 2

    add_lesions(labels == 1, 0.07, 0.11, 5.0)
    add_lesions(labels == 2, 0.04, 0.08, 140.0)
    n_mets = rng.integers(2, _MAX_METASTASES + 1, n)
    for k in range(_MAX_METASTASES):
        add_lesions((labels == 3) & (n_mets > k), 0.03, 0.05, 20.0)

    hu += rng.normal(0, noise_hu, hu.shape)
    images = np.clip((hu - _WINDOW_LOW) / (_WINDOW_HIGH - _WINDOW_LOW), 0.0, 1.0)
    return images, labels.astype(np.int64), segmentation


def _case_arrays(
    images: FloatArray, labels: npt.NDArray[np.integer], *, field_of_view_mm: float
) -> CaseArrays:
    n, size = len(images), images.shape[-1]
    return CaseArrays(
        case_ids=np.array([f"slice-{i:05d}" for i in range(n)]),
        groups=np.array([f"patient-{i:05d}" for i in range(n)]),
        images=images[:, None].astype(np.float32),
        labels=labels,
        spacing=np.full((n, 2), field_of_view_mm / size),
    )


def synthetic_ct_slices(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """Lesion-type classification: one class per slice, classes balanced.

    The slices come out windowed and sized already; ``preprocessing`` is not used.
    """
    images, labels, _ = _render(params)
    return _case_arrays(images, labels, field_of_view_mm=_FIELD_OF_VIEW_MM)


def synthetic_ct_organs(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """Liver and lesion segmentation (labels 0 background, 1 liver, 2 lesion) in 2D slices."""
    images, _, segmentation = _render(params)
    return _case_arrays(images, segmentation, field_of_view_mm=_FIELD_OF_VIEW_MM)
