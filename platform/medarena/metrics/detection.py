"""Lesion detection: LUNA16-style candidate matching, FROC, sensitivity at fixed false positives
per scan, CPM, and their bootstrap confidence intervals.

Matching follows the LUNA16 evaluation script (``noduleCADEvaluationLUNA16.py``,
Setio et al. 2017):

* a candidate hits a lesion when its squared distance to the centre is *strictly* below the
  squared radius; a lesion with a negative diameter (LUNA16's ``-1`` for excluded findings)
  gets ``default_diameter_mm`` (10 mm);
* an included lesion is detected with the highest probability among its hits; several hits on
  one lesion count once (the others are neither TP nor FP), and one candidate may detect two
  overlapping lesions;
* a candidate that hits only excluded findings is ignored (neither TP nor FP); a candidate that
  hits nothing is a false positive;
* the FROC curve is the ROC curve of detected lesions vs false positives, with sensitivity over
  *all* included lesions and false positives divided by the number of scans (scans without
  lesions count); sensitivity at 1/8 … 8 FPs per scan is read by ``np.interp`` and CPM is its
  mean.

The matching is done once; the bootstrap resamples scans by index arithmetic on the matched
events (one global sort), never re-matching, so 1000 samples take a fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medarena.metrics._registry import MetricInfo, register
from medarena.metrics.conventions import (
    OPERATING_POINTS,
    Interpolation,
    OperatingPoints,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class DetectionMatches:
    """The outcome of matching candidates to lesions, all a FROC analysis needs.

    ``lesion_scan``/``lesion_score``: one entry per *included* lesion, its scan index and the
    highest probability among the candidates that hit it (``-inf`` if missed).
    ``fp_scan``/``fp_score``: one entry per false-positive candidate. ``n_scans`` counts every
    scan, including those without lesions or candidates.
    ``candidate_status``: per input candidate, 1 = hit an included lesion, 0 = false positive,
    -1 = ignored (hit only excluded findings).
    """

    n_scans: int
    lesion_scan: IntArray
    lesion_score: FloatArray
    fp_scan: IntArray
    fp_score: FloatArray
    candidate_status: npt.NDArray[np.int8]

    @property
    def n_lesions(self) -> int:
        return int(self.lesion_scan.size)


def match_candidates(
    *,
    n_scans: int,
    lesion_scan: npt.ArrayLike,
    lesion_xyz: npt.ArrayLike,
    lesion_diameter_mm: npt.ArrayLike,
    lesion_included: npt.ArrayLike,
    candidate_scan: npt.ArrayLike,
    candidate_xyz: npt.ArrayLike,
    candidate_score: npt.ArrayLike,
    default_diameter_mm: float = 10.0,
) -> DetectionMatches:
    """Match candidates to lesions as the LUNA16 evaluation script does (see module docstring).

    Scans are integer indices ``0 … n_scans-1``; coordinates are world millimetres, shape
    ``(n, 3)``. Vectorised: every (lesion, candidate of the same scan) pair is tested at once.
    """
    l_scan = np.asarray(lesion_scan, dtype=np.intp).reshape(-1)
    l_xyz = np.asarray(lesion_xyz, dtype=np.float64).reshape(-1, 3)
    diam = np.asarray(lesion_diameter_mm, dtype=np.float64).reshape(-1)
    incl = np.asarray(lesion_included, dtype=bool).reshape(-1)
    c_scan = np.asarray(candidate_scan, dtype=np.intp).reshape(-1)
    c_xyz = np.asarray(candidate_xyz, dtype=np.float64).reshape(-1, 3)
    c_score = np.asarray(candidate_score, dtype=np.float64).reshape(-1)
    diam = np.where(diam < 0.0, default_diameter_mm, diam)
    radius_sq = (diam / 2.0) ** 2

    order = np.argsort(c_scan, kind="stable")
    sorted_scan = c_scan[order]
    start = np.searchsorted(sorted_scan, l_scan, side="left")
    stop = np.searchsorted(sorted_scan, l_scan, side="right")
    counts = stop - start
    pair_lesion = np.repeat(np.arange(l_scan.size), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_cand = order[np.repeat(start, counts) + offsets]
    d2 = np.sum((l_xyz[pair_lesion] - c_xyz[pair_cand]) ** 2, axis=1)
    hit = d2 < radius_sq[pair_lesion]
    hit_lesion, hit_cand = pair_lesion[hit], pair_cand[hit]

    best = np.full(l_scan.size, -np.inf)
    inc_hit = incl[hit_lesion]
    np.maximum.at(best, hit_lesion[inc_hit], c_score[hit_cand[inc_hit]])
    status = np.zeros(c_scan.size, dtype=np.int8)
    status[hit_cand[~inc_hit]] = -1
    status[hit_cand[inc_hit]] = 1
    fp = status == 0
    return DetectionMatches(
        n_scans=int(n_scans),
        lesion_scan=l_scan[incl],
        lesion_score=best[incl],
        fp_scan=c_scan[fp],
        fp_score=c_score[fp],
        candidate_status=status,
    )


def froc_curve(matches: DetectionMatches) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(fps_per_scan, sensitivity, thresholds)`` at every distinct probability, from (0, 0).

    The points of LUNA16's ``computeFROC`` (scikit-learn's ``roc_curve`` rescaled), keeping the
    collinear points that ``roc_curve`` drops, which does not change any interpolated value.
    """
    fps, sens, thr = _curve(
        matches.lesion_score, np.ones_like(matches.lesion_score), matches.fp_score,
        np.ones_like(matches.fp_score), matches.n_lesions, matches.n_scans,
    )  # fmt: skip
    return fps[0], sens[0], thr


def _curve(
    lesion_score: FloatArray,
    lesion_weight: npt.NDArray[np.floating],
    fp_score: FloatArray,
    fp_weight: npt.NDArray[np.floating],
    n_lesions: float | FloatArray,
    n_scans: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """FROC points for one or many weightings (weights of shape ``(..., n)`` -> rows)."""
    detected = np.isfinite(lesion_score)
    scores = np.concatenate([lesion_score[detected], fp_score])
    is_tp = np.concatenate([np.ones(int(detected.sum())), np.zeros(fp_score.size)])
    lw = np.atleast_2d(lesion_weight)[:, detected]
    fw = np.atleast_2d(fp_weight)
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    w = np.concatenate([lw, fw], axis=1)[:, order]
    tp_w = np.cumsum(w * is_tp[order], axis=1)
    fp_w = np.cumsum(w * (1.0 - is_tp[order]), axis=1)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if s.size else np.zeros(0, np.intp)
    zeros = np.zeros((w.shape[0], 1))
    tps = np.concatenate([zeros, tp_w[:, last]], axis=1)
    fps = np.concatenate([zeros, fp_w[:, last]], axis=1)
    denom = np.asarray(n_lesions, dtype=np.float64).reshape(-1, 1)
    tp_total, fp_total = tps[:, -1:], fps[:, -1:]
    # The script's order of operations (rates first, as roc_curve, then rescaled), so that a
    # point landing exactly on an operating point rounds the same way as the reference.
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp_total > 0, (tps / tp_total) * tp_total / denom, 0.0)
        fps_rate = np.where(fp_total > 0, (fps / fp_total) * fp_total / n_scans, 0.0)
    return fps_rate, sens, np.r_[np.inf, s[last]]


def _read_at(
    fps: FloatArray, sens: FloatArray, points: FloatArray, interpolation: Interpolation
) -> FloatArray:
    """Sensitivity at ``points`` for each row of a FROC curve, as ``np.interp`` row by row.

    Rows are non-decreasing in ``fps``. ``np.interp`` takes the last point whose abscissa is at
    or below the target; "linear" interpolates towards the next point, "step" does not.
    """
    n_rows, n_pts = fps.shape
    out = np.empty((n_rows, points.size))
    rows = np.arange(n_rows)
    for k, p in enumerate(points):
        j = np.sum(fps <= p, axis=1) - 1
        y_j = sens[rows, j]
        if interpolation == "step":
            out[:, k] = y_j
            continue
        nxt = np.minimum(j + 1, n_pts - 1)
        x0, x1 = fps[rows, j], fps[rows, nxt]
        y1 = sens[rows, nxt]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (y1 - y_j) / (x1 - x0)
        interp = y_j + (p - x0) * slope
        out[:, k] = np.where((nxt == j) | (x0 == p), y_j, interp)
    return out


def sensitivity_at(
    matches: DetectionMatches,
    *,
    operating_points: OperatingPoints = "luna16",
    interpolation: Interpolation = "linear",
) -> FloatArray:
    """Sensitivity at each operating point (false positives per scan) of the FROC curve."""
    fps, sens, _ = froc_curve(matches)
    pts = np.asarray(OPERATING_POINTS[operating_points])
    if matches.n_lesions == 0:
        return np.full(pts.size, np.nan)
    out: FloatArray = _read_at(fps[None], sens[None], pts, interpolation)[0]
    return out


def cpm(
    matches: DetectionMatches,
    *,
    operating_points: OperatingPoints = "luna16",
    interpolation: Interpolation = "linear",
) -> float:
    """Competition performance metric: mean sensitivity at the operating points (LUNA16's CPM;
    with ``operating_points="camelyon16"`` the CAMELYON16 FROC score)."""
    sens = sensitivity_at(matches, operating_points=operating_points, interpolation=interpolation)
    return float(np.mean(sens))


def fps_per_scan(matches: DetectionMatches) -> float:
    """Average number of false-positive candidates per scan, at any probability."""
    return matches.fp_score.size / matches.n_scans if matches.n_scans else float("nan")


def detection_sensitivity(matches: DetectionMatches) -> float:
    """Share of included lesions hit by at least one candidate, at any probability."""
    if matches.n_lesions == 0:
        return float("nan")
    return float(np.mean(np.isfinite(matches.lesion_score)))


@dataclass(frozen=True)
class FrocBootstrap:
    """Bootstrap distributions over resampled scans: one row per sample."""

    sensitivity: FloatArray  # (n_samples, n_points)
    cpm: FloatArray  # (n_samples,)
    fps_per_scan: FloatArray  # (n_samples,)
    detection_sensitivity: FloatArray  # (n_samples,)

    def by_name(self, points: Sequence[float]) -> dict[str, FloatArray]:
        """The samples of every value :func:`froc_summary` reports, under the same names."""
        out = {
            "cpm": self.cpm,
            "sensitivity": self.detection_sensitivity,
            "fps_per_scan": self.fps_per_scan,
        }
        for k, point in enumerate(points):
            out[sensitivity_at_name(point)] = self.sensitivity[:, k]
        return out


def sensitivity_at_name(point: float) -> str:
    """The reported name of the sensitivity at ``point`` false positives per scan."""
    return f"sensitivity_at_{point:g}_fp"


def froc_summary(
    matches: DetectionMatches,
    *,
    operating_points: OperatingPoints = "luna16",
    interpolation: Interpolation = "linear",
) -> dict[str, float]:
    """CPM, overall sensitivity, false positives per scan and the sensitivity at each point."""
    sens = sensitivity_at(matches, operating_points=operating_points, interpolation=interpolation)
    out = {
        "cpm": float(np.mean(sens)),
        "sensitivity": detection_sensitivity(matches),
        "fps_per_scan": fps_per_scan(matches),
    }
    for point, value in zip(OPERATING_POINTS[operating_points], sens, strict=True):
        out[sensitivity_at_name(point)] = float(value)
    return out


def froc_bootstrap(
    matches: DetectionMatches,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    operating_points: OperatingPoints = "luna16",
    interpolation: Interpolation = "linear",
    chunk: int = 50,
) -> FrocBootstrap:
    """Resample scans with replacement ``n_samples`` times (seeded) and recompute the FROC.

    A resampled scan drawn ``m`` times contributes its lesions and false positives ``m`` times,
    as the LUNA16 script's bootstrap concatenates the candidates of the drawn scans. Vectorised:
    draws become per-scan weights, applied to the events sorted once by probability.
    """
    rng = np.random.default_rng(seed)
    n = matches.n_scans
    pts = np.asarray(OPERATING_POINTS[operating_points])
    draws = rng.integers(0, n, size=(n_samples, n))
    sens_out = np.empty((n_samples, pts.size))
    fps_out = np.empty(n_samples)
    det_out = np.empty(n_samples)
    for lo in range(0, n_samples, chunk):
        rows = draws[lo : lo + chunk]
        flat = (np.arange(rows.shape[0])[:, None] * n + rows).ravel()
        weights = np.bincount(flat, minlength=rows.shape[0] * n).reshape(-1, n).astype(np.float64)
        lw = weights[:, matches.lesion_scan]
        fw = weights[:, matches.fp_scan]
        n_les = lw.sum(axis=1)
        fps, sens, _ = _curve(matches.lesion_score, lw, matches.fp_score, fw, n_les, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            sens_out[lo : lo + chunk] = np.where(
                n_les[:, None] > 0, _read_at(fps, sens, pts, interpolation), np.nan
            )
            det = (lw * np.isfinite(matches.lesion_score)).sum(axis=1) / n_les
        det_out[lo : lo + chunk] = np.where(n_les > 0, det, np.nan)
        fps_out[lo : lo + chunk] = fw.sum(axis=1) / n
    return FrocBootstrap(
        sensitivity=sens_out,
        cpm=sens_out.mean(axis=1),
        fps_per_scan=fps_out,
        detection_sensitivity=det_out,
    )


register(
    MetricInfo(
        "cpm",
        "CPM (mean FROC sensitivity)",
        "detection",
        True,
        (0.0, 1.0),
        cpm,
        "LUNA16 noduleCADEvaluationLUNA16.py",
    )
)
register(
    MetricInfo(
        "fps_per_scan",
        "False positives per scan",
        "detection",
        False,
        (0.0, math.inf),
        fps_per_scan,
        "LUNA16 noduleCADEvaluationLUNA16.py",
    )
)
register(
    MetricInfo(
        "sensitivity",
        "Detection sensitivity (any probability)",
        "detection",
        True,
        (0.0, 1.0),
        detection_sensitivity,
        "LUNA16 noduleCADEvaluationLUNA16.py",
    )
)
