"""Time MedArena's metrics against the reference implementations at realistic sizes.

Run: ``nice -n 10 python bench/bench_metrics.py`` (``--quick`` for small sizes). Prints one line
per comparison: our time, each reference's time, and the speed-up over the fastest reference.
Needs the dev extras (MONAI, medpy, surface-distance, scikit-learn).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "metrics"))
warnings.simplefilter("ignore")


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def report(name: str, ours: float, refs: dict[str, float]) -> None:
    fastest = min(refs.values())
    parts = ", ".join(f"{k} {v:.3f} s" for k, v in refs.items())
    print(f"{name}: ours {ours:.3f} s; {parts}; speed-up vs fastest {fastest / ours:.1f}x")


def volumes(n: int, size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    zz, yy, xx = np.mgrid[:size, :size, :size]
    for _ in range(n):
        c = rng.uniform(0.35, 0.65, 3) * size
        r = rng.uniform(0.15, 0.3) * size
        ref = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < r**2
        shift = rng.integers(-3, 4, 3)
        pred = np.roll(ref, tuple(shift), axis=(0, 1, 2))
        pred = ndimage.binary_dilation(pred, iterations=int(rng.integers(0, 2)))
        out.append((ref, pred))
    return out


def bench_dice(n: int, size: int) -> None:
    import surface_distance as deepmind
    import torch
    from medpy.metric.binary import dc
    from monai.metrics import compute_dice

    from medarena.metrics import dice

    vols = volumes(n, size, 0)
    ours = timed(lambda: [dice(a, b) for a, b in vols])
    ref_t = torch.as_tensor(np.stack([a for a, _ in vols])[:, None])
    pred_t = torch.as_tensor(np.stack([b for _, b in vols])[:, None])
    refs = {
        "MONAI compute_dice (batched)": timed(
            lambda: compute_dice(pred_t, ref_t, include_background=True)
        ),
        "medpy dc": timed(lambda: [dc(b, a) for a, b in vols]),
        "DeepMind compute_dice_coefficient": timed(
            lambda: [deepmind.compute_dice_coefficient(a, b) for a, b in vols]
        ),
    }
    report(f"Dice, {n} volumes of {size}^3", ours, refs)


def bench_distances(n: int, size: int) -> None:
    import surface_distance as deepmind
    import torch
    from medpy.metric.binary import hd95 as medpy_hd95
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    from medarena.metrics import hd95, normalized_surface_distance

    spacing = (0.8, 0.8, 2.5)
    vols = volumes(n, size, 1)
    t = [(torch.as_tensor(a[None, None]), torch.as_tensor(b[None, None])) for a, b in vols]
    ours = timed(lambda: [hd95(a, b, spacing=spacing) for a, b in vols])
    refs = {
        "MONAI": timed(
            lambda: [
                compute_hausdorff_distance(
                    pb, pa, include_background=True, percentile=95, spacing=spacing
                )
                for pa, pb in t
            ]
        ),
        "medpy": timed(lambda: [medpy_hd95(b, a, voxelspacing=spacing) for a, b in vols]),
    }
    report(f"HD95, {n} volumes of {size}^3, spacing {spacing}", ours, refs)
    ours = timed(lambda: [normalized_surface_distance(a, b, spacing=spacing) for a, b in vols])
    refs = {
        "MONAI": timed(
            lambda: [
                compute_surface_dice(pb, pa, [1.0], include_background=True, spacing=spacing)
                for pa, pb in t
            ]
        ),
    }
    report(f"NSD (voxel), {n} volumes of {size}^3", ours, refs)
    ours = timed(
        lambda: [
            normalized_surface_distance(a, b, spacing=spacing, surface="surfel") for a, b in vols
        ]
    )
    refs = {
        "DeepMind": timed(
            lambda: [
                deepmind.compute_surface_dice_at_tolerance(
                    deepmind.compute_surface_distances(a, b, spacing), 1.0
                )
                for a, b in vols
            ]
        ),
        "MONAI use_subvoxels": timed(
            lambda: [
                compute_surface_dice(
                    pb, pa, [1.0], include_background=True, spacing=spacing, use_subvoxels=True
                )
                for pa, pb in t
            ]
        ),
    }
    report(f"NSD (surfel), {n} volumes of {size}^3", ours, refs)


def bench_auc(n: int) -> None:
    from sklearn.metrics import roc_auc_score

    from medarena.metrics import binary_auc

    rng = np.random.default_rng(0)
    y = rng.random(n) < 0.3
    s = rng.random(n) + 0.3 * y
    ours = timed(lambda: binary_auc(y, s), repeat=3)
    refs = {"scikit-learn roc_auc_score": timed(lambda: roc_auc_score(y, s), repeat=3)}
    report(f"binary AUC, {n} scores", ours, refs)


def bench_froc(n_scans: int, n_cands: int, n_boot: int) -> None:
    import luna16_reference as ref

    from medarena.metrics import cpm, froc_bootstrap, match_candidates

    rng = np.random.default_rng(0)
    scans = [f"s{i}" for i in range(n_scans)]
    lesions: dict[str, list[tuple[float, float, float, float, str]]] = {}
    candidates: dict[str, list[tuple[float, float, float, float]]] = {}
    for uid in scans:
        rows = [(*rng.uniform(0, 300, 3), float(rng.uniform(3, 30)), "Included")
                for _ in range(rng.integers(0, 3))]  # fmt: skip
        lesions[uid] = rows
        cands = [(x + rng.normal(0, 2), y, z, float(rng.random())) for x, y, z, *_ in rows]
        cands += [(*rng.uniform(0, 300, 3), float(rng.random()))
                  for _ in range(n_cands - len(cands))]  # fmt: skip
        candidates[uid] = cands
    l_rows = [(i, *r[:4]) for i, u in enumerate(scans) for r in lesions[u]]
    c_rows = [(i, *r) for i, u in enumerate(scans) for r in candidates[u]]
    la, ca = np.array(l_rows, dtype=float), np.array(c_rows, dtype=float)

    def ours() -> None:
        m = match_candidates(
            n_scans=n_scans, lesion_scan=la[:, 0].astype(int), lesion_xyz=la[:, 1:4],
            lesion_diameter_mm=la[:, 4], lesion_included=np.ones(len(la), bool),
            candidate_scan=ca[:, 0].astype(int), candidate_xyz=ca[:, 1:4],
            candidate_score=ca[:, 4],
        )  # fmt: skip
        cpm(m)
        froc_bootstrap(m, n_samples=n_boot, seed=0)

    def reference() -> None:
        ref.cpm(scans, lesions, candidates)
        ref.bootstrap(scans, lesions, candidates, n_samples=n_boot, seed=0)

    report(
        f"FROC + CPM + {n_boot} bootstrap samples, {n_scans} scans x {n_cands} candidates",
        timed(ours),
        {"LUNA16 script's algorithm": timed(reference)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        bench_dice(10, 64)
        bench_distances(3, 64)
        bench_auc(100_000)
        bench_froc(100, 20, 100)
    else:
        bench_dice(100, 128)
        bench_distances(10, 128)
        bench_auc(1_000_000)
        bench_froc(1000, 50, 1000)


if __name__ == "__main__":
    main()
