"""A faithful, naive re-implementation of LUNA16's ``noduleCADEvaluationLUNA16.py``.

The reference algorithm that tests compare with and bench/bench_metrics.py times against: one
Python loop over lesions and, for each, over every candidate of the scan (as the official
script), scikit-learn's ``roc_curve`` for the FROC (``computeFROC``), ``np.interp`` at the
operating points, and a bootstrap that rebuilds the candidate lists of the drawn scans and
recomputes the FROC for every sample (``computeFROC_bootstrap``).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_curve

POINTS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def match(scans, lesions, candidates):
    """lesions: {uid: [(x, y, z, diameter, state)]} included before excluded (as the script's
    collectNoduleAnnotations); candidates: {uid: [(x, y, z, prob)]}.

    Returns per-entry lists like the script: gt (1 lesion, 0 FP), prob, exclude, scan uid.
    """
    gt, prob, exclude, where = [], [], [], []
    for uid in scans:
        cands = dict(enumerate(candidates.get(uid, [])))
        remaining = dict(cands)
        for x, y, z, diameter, state in lesions.get(uid, []):
            if diameter < 0.0:
                diameter = 10.0
            radius_sq = (diameter / 2.0) ** 2
            found = False
            hits = []
            for key, (x2, y2, z2, p) in cands.items():
                dist = math.pow(x - x2, 2.0) + math.pow(y - y2, 2.0) + math.pow(z - z2, 2.0)
                if dist < radius_sq:
                    if state == "Included":
                        found = True
                        hits.append(p)
                        remaining.pop(key, None)
                    elif key in remaining:  # excluded finding: the mark is ignored
                        del remaining[key]
            if state == "Included":
                gt.append(1.0)
                where.append(uid)
                if found:
                    prob.append(max(hits))
                    exclude.append(False)
                else:
                    prob.append(-1.0)
                    exclude.append(True)
        for _, (_, _, _, p) in remaining.items():
            gt.append(0.0)
            prob.append(p)
            exclude.append(False)
            where.append(uid)
    return gt, prob, exclude, where


def compute_froc(gt, prob, n_images, exclude):
    """The script's computeFROC."""
    gt_local = [g for g, e in zip(gt, exclude, strict=True) if not e]
    prob_local = [p for p, e in zip(prob, exclude, strict=True) if not e]
    detected = sum(gt_local)
    total = sum(gt)
    fpr, tpr, thresholds = roc_curve(gt_local, prob_local)
    if sum(gt) == len(gt):  # no false positives
        fps = np.zeros(len(fpr))
    else:
        fps = fpr * (len(prob_local) - detected) / n_images
    sens = (tpr * detected) / total
    return fps, sens, thresholds


def cpm(scans, lesions, candidates, points=POINTS):
    gt, prob, exclude, _ = match(scans, lesions, candidates)
    fps, sens, _ = compute_froc(gt, prob, len(scans), exclude)
    values = np.interp(points, fps, sens)
    return float(np.mean(values)), values


def bootstrap(scans, lesions, candidates, *, n_samples, seed, points=POINTS):
    """computeFROC_bootstrap: draw scans, concatenate their entries, recompute the FROC."""
    gt, prob, exclude, where = match(scans, lesions, candidates)
    by_scan: dict[str, list[int]] = {}
    for i, uid in enumerate(where):
        by_scan.setdefault(uid, []).append(i)
    rng = np.random.default_rng(seed)
    out = np.empty((n_samples, len(points)))
    for b in range(n_samples):
        drawn = rng.integers(0, len(scans), size=len(scans))
        idx = [i for s in drawn for i in by_scan.get(scans[s], [])]
        g = [gt[i] for i in idx]
        p = [prob[i] for i in idx]
        e = [exclude[i] for i in idx]
        fps, sens, _ = compute_froc(g, p, len(scans), e)
        out[b] = np.interp(points, fps, sens)
    return out
