"""Detection metrics against LUNA16's algorithm (re-implemented naively in luna16_reference.py)
and against FROC values computed by hand."""

from __future__ import annotations

import warnings

import luna16_reference as ref
import numpy as np
import pytest

from medarena.metrics import (
    cpm,
    fps_per_scan,
    froc_bootstrap,
    get_metric,
    match_candidates,
    sensitivity_at,
)


def _ours(scans, lesions, candidates):
    index = {uid: i for i, uid in enumerate(scans)}
    l_rows = [(index[u], *row) for u in scans for row in lesions.get(u, [])]
    c_rows = [(index[u], *row) for u in scans for row in candidates.get(u, [])]
    la = np.array([r[:5] for r in l_rows], dtype=float).reshape(-1, 5)
    ca = np.array(c_rows, dtype=float).reshape(-1, 5)
    return match_candidates(
        n_scans=len(scans),
        lesion_scan=la[:, 0].astype(int),
        lesion_xyz=la[:, 1:4],
        lesion_diameter_mm=la[:, 4],
        lesion_included=[r[5] == "Included" for r in l_rows],
        candidate_scan=ca[:, 0].astype(int),
        candidate_xyz=ca[:, 1:4],
        candidate_score=ca[:, 4],
    )


def test_strict_radius_excluded_and_double_hits_by_hand() -> None:
    # Scan a: an included lesion of diameter 10 mm at the origin (radius 5).
    #   - a candidate exactly 5 mm away is NOT a hit (the script tests dist < radius strictly): FP
    #   - two candidates inside (p=0.9 and p=0.3) count once, with p=0.9: one TP, no FP
    # Scan b: an excluded finding with diameter -1 (read as 10 mm) at (50, 0, 0):
    #   - a candidate 4 mm from it (p=0.8) is ignored: neither TP nor FP
    #   - a candidate 6 mm from it (p=0.7) is outside 5 mm: FP
    # Scan c: no lesion, no candidate (still counts in FPs per scan).
    # Lesion order: the included lesion of scan a comes first as in the script.
    scans = ["a", "b", "c"]
    lesions = {
        "a": [(0.0, 0.0, 0.0, 10.0, "Included")],
        "b": [(50.0, 0.0, 0.0, -1.0, "Excluded")],
    }
    candidates = {
        "a": [(5.0, 0.0, 0.0, 0.95), (1.0, 1.0, 1.0, 0.9), (0.0, 2.0, 0.0, 0.3)],
        "b": [(54.0, 0.0, 0.0, 0.8), (56.0, 0.0, 0.0, 0.7)],
    }
    m = _ours(scans, lesions, candidates)
    assert m.candidate_status.tolist() == [0, 1, 1, -1, 0]
    assert m.lesion_score.tolist() == [0.9]
    assert sorted(m.fp_score.tolist()) == [0.7, 0.95]
    assert fps_per_scan(m) == pytest.approx(2 / 3)
    # FROC by hand: thresholds 0.95 (1 FP -> 1/3 FP/scan, sens 0), 0.9 (1/3, 1.0), 0.7 (2/3, 1).
    # Every operating point >= 1/8: below 1/3 it interpolates between (0, 0) and (1/3, 0):
    # sensitivity 0 at 1/8 and 1/4; at 1/2 and beyond the curve is at 1.0.
    sens = sensitivity_at(m)
    np.testing.assert_allclose(sens, [0, 0, 1, 1, 1, 1, 1])
    assert cpm(m) == pytest.approx(5 / 7)
    assert get_metric("cpm").compute(m) == pytest.approx(5 / 7)
    reference_cpm, _ = ref.cpm(scans, lesions, candidates)
    assert cpm(m) == pytest.approx(reference_cpm, abs=1e-12)


def test_one_candidate_detects_two_overlapping_lesions() -> None:
    # Two included lesions 4 mm apart, both 10 mm: one candidate between them hits both;
    # the script counts both as detected (it matches against all candidates, not the rest).
    scans = ["a"]
    lesions = {"a": [(0.0, 0, 0, 10.0, "Included"), (4.0, 0, 0, 10.0, "Included")]}
    candidates = {"a": [(2.0, 0, 0, 0.6), (30.0, 0, 0, 0.4)]}
    m = _ours(scans, lesions, candidates)
    assert m.lesion_score.tolist() == [0.6, 0.6]
    # curve: (0,0) -> (0, 1.0) at 0.6 -> (1, 1.0) at 0.4; sensitivity 1 everywhere
    assert cpm(m) == pytest.approx(1.0)
    assert ref.cpm(scans, lesions, candidates)[0] == pytest.approx(1.0)


def test_missed_lesion_caps_sensitivity_and_step_interpolation() -> None:
    # 2 lesions, one found at p=0.5, one missed; 1 scan; FPs at 0.9 and 0.1.
    # Curve: (0,0), (1, 0) at 0.9, (1, 0.5) at 0.5, (2, 0.5) at 0.1.
    scans = ["a"]
    lesions = {"a": [(0.0, 0, 0, 6.0, "Included"), (40.0, 0, 0, 6.0, "Included")]}
    candidates = {"a": [(0.5, 0, 0, 0.5), (90.0, 0, 0, 0.9), (-90.0, 0, 0, 0.1)]}
    m = _ours(scans, lesions, candidates)
    linear = sensitivity_at(m)
    # at 1/8..1/2 the curve is at 0 (linear between (0,0) and (1,0)); at 1 np.interp takes the
    # last point with fps == 1, i.e. 0.5; beyond, 0.5.
    np.testing.assert_allclose(linear, [0, 0, 0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(linear, ref.cpm(scans, lesions, candidates)[1])
    step = sensitivity_at(m, interpolation="step")
    np.testing.assert_allclose(step, [0, 0, 0, 0.5, 0.5, 0.5, 0.5])
    camelyon = sensitivity_at(m, operating_points="camelyon16")
    np.testing.assert_allclose(camelyon, [0, 0, 0.5, 0.5, 0.5, 0.5])


def _random_study(seed: int, n_scans: int = 40):
    rng = np.random.default_rng(seed)
    scans = [f"scan{i}" for i in range(n_scans)]
    lesions, candidates = {}, {}
    for uid in scans:
        rows = []
        for _ in range(rng.integers(0, 3)):
            rows.append((*rng.uniform(0, 60, 3), float(rng.uniform(3, 20)), "Included"))
        for _ in range(rng.integers(0, 2)):
            d = -1.0 if rng.random() < 0.5 else float(rng.uniform(3, 10))
            rows.append((*rng.uniform(0, 60, 3), d, "Excluded"))
        lesions[uid] = rows
        cands = []
        for x, y, z, *_ in rows:  # some candidates near lesions
            for _ in range(rng.integers(0, 3)):
                cands.append((x + rng.normal(0, 3), y + rng.normal(0, 3), z, float(rng.random())))
        for _ in range(rng.integers(0, 8)):
            cands.append((*rng.uniform(0, 60, 3), float(np.round(rng.random(), 2))))
        candidates[uid] = cands
    return scans, lesions, candidates


@pytest.mark.parametrize("seed", range(6))
def test_cpm_matches_luna16_on_random_studies(seed: int) -> None:
    scans, lesions, candidates = _random_study(seed)
    m = _ours(scans, lesions, candidates)
    expected_cpm, expected_sens = ref.cpm(scans, lesions, candidates)
    np.testing.assert_allclose(sensitivity_at(m), expected_sens, atol=1e-9)
    assert cpm(m) == pytest.approx(expected_cpm, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_matches_luna16_resampling(seed: int) -> None:
    scans, lesions, candidates = _random_study(seed, n_scans=25)
    m = _ours(scans, lesions, candidates)
    ours = froc_bootstrap(m, n_samples=40, seed=seed, chunk=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # roc_curve warns on samples without positives
        expected = ref.bootstrap(scans, lesions, candidates, n_samples=40, seed=seed)
    ok = ~np.isnan(expected).any(axis=1)
    np.testing.assert_allclose(ours.sensitivity[ok], expected[ok], atol=1e-9)
