"""Time MedArena's metrics against the reference implementations at realistic sizes.

Run: ``nice -n 10 python bench/bench_metrics.py`` (``--quick`` for small sizes). Prints one line
per comparison: our time, each reference's time, and the speed-up over the fastest reference.
Surface metrics (HD95, NSD) run on two sets of volumes, small structures and large ones (best
of three runs after a warm-up call), and also time the implementation of
``medarena.metrics.segmentation`` at git revision ``--previous`` (read with ``git show``;
skipped outside a git checkout), checking that it gives the same values. ``--only`` runs one
group. Needs the dev extras (MONAI, medpy, surface-distance, scikit-learn).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "metrics"))
warnings.simplefilter("ignore")

# The last revision of segmentation.py before the surface metrics' rework (bounding box read
# once per mask, no search for points on both surfaces, NSD searching within its tolerance).
PREVIOUS = "0e3893ea35f5451ada9db7e6bb3f3c815b4870cf"
REPEAT = 3  # surface metrics: best of three runs (medpy, ~50x slower than the others: one)


Volumes = list[tuple[np.ndarray, np.ndarray]]


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


def previous_segmentation(rev: str) -> types.ModuleType | None:
    """``medarena.metrics.segmentation`` as of git revision ``rev``; None if git cannot show it."""
    import medarena.metrics._registry as registry

    path = "platform/medarena/metrics/segmentation.py"
    try:
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
                               capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("previous_segmentation")
    sys.modules[module.__name__] = module
    registered = dict(registry._REGISTRY)  # it registers its metrics again: keep ours
    registry._REGISTRY.clear()
    try:
        exec(compile(shown.stdout, f"{rev[:12]}:{path}", "exec"), module.__dict__)
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(registered)
    return module


def volumes(n: int, size: int, seed: int) -> Volumes:
    """Large structures: a sphere of radius 0.15-0.3 x size near the centre; the prediction
    shifted by up to 3 voxels and, one time in two, dilated by one."""
    rng = np.random.default_rng(seed)
    out = []
    zz, yy, xx = np.mgrid[:size, :size, :size]
    for _ in range(n):
        c = rng.uniform(0.35, 0.65, 3) * size
        r = rng.uniform(0.15, 0.3) * size
        ref = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < r**2
        shift = rng.integers(-3, 4, 3)
        pred = np.roll(ref, tuple(shift), axis=(0, 1, 2))
        if rng.integers(0, 2):  # (iterations=0 would dilate until the image is full)
            pred = ndimage.binary_dilation(pred)
        out.append((ref, pred))
    return out


def small_volumes(n: int, size: int, seed: int) -> Volumes:
    """Small structures anywhere in the image: a sphere of radius 2-6 voxels; the prediction
    shifted by up to 2 voxels, one time in two dilated by one, and one time in three with a
    small false positive elsewhere (the two masks' bounding box then spans much of the image)."""
    rng = np.random.default_rng(seed)
    out = []
    zz, yy, xx = np.ogrid[:size, :size, :size]
    for _ in range(n):
        c = rng.uniform(6, size - 6, 3)
        ref = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < rng.uniform(2, 6) ** 2
        pred = np.roll(ref, tuple(rng.integers(-2, 3, 3)), axis=(0, 1, 2))
        if rng.integers(0, 2):
            pred = ndimage.binary_dilation(pred)
        if rng.random() < 1 / 3:
            f = rng.uniform(4, size - 4, 3)
            pred |= (zz - f[0]) ** 2 + (yy - f[1]) ** 2 + (xx - f[2]) ** 2 < rng.uniform(1, 3) ** 2
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


def run(fn: Callable[[], list[float]]) -> tuple[float, list[float]]:
    """Time one call of ``fn``, keeping its values."""
    start = time.perf_counter()
    values = fn()
    return time.perf_counter() - start, values


def bench_distances(
    scenario: str, vols: Volumes, previous: types.ModuleType | None
) -> dict[str, tuple[float, float | None]]:
    """HD95 and NSD on ``vols``, each implementation called once on one volume before it is
    timed, then best of ``REPEAT`` runs; returns {metric: (our speed-up over the fastest
    reference, the previous implementation's)}."""
    import surface_distance as deepmind
    import torch
    from medpy.metric.binary import hd95 as medpy_hd95
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    from medarena.metrics import segmentation as ours_module

    spacing = (0.8, 0.8, 2.5)
    size = vols[0][0].shape[0]
    t = [(torch.as_tensor(a[None, None]), torch.as_tensor(b[None, None])) for a, b in vols]
    cases: list[tuple[str, str, dict[str, str], dict[str, Callable[..., object]]]] = [
        ("HD95", "hd95", {}, {
            "MONAI": lambda v, t: [compute_hausdorff_distance(pb, pa, include_background=True,
                                                              percentile=95, spacing=spacing)
                                   for pa, pb in t],
            "medpy": lambda v, t: [medpy_hd95(b, a, voxelspacing=spacing) for a, b in v],
        }),
        ("NSD (voxel)", "normalized_surface_distance", {}, {
            "MONAI": lambda v, t: [compute_surface_dice(pb, pa, [1.0], include_background=True,
                                                        spacing=spacing)
                                   for pa, pb in t],
        }),
        ("NSD (surfel)", "normalized_surface_distance", {"surface": "surfel"}, {
            "DeepMind": lambda v, t: [deepmind.compute_surface_dice_at_tolerance(
                                          deepmind.compute_surface_distances(a, b, spacing), 1.0)
                                      for a, b in v],
            "MONAI use_subvoxels": lambda v, t: [compute_surface_dice(
                                                     pb, pa, [1.0], include_background=True,
                                                     spacing=spacing, use_subvoxels=True)
                                                 for pa, pb in t],
        }),
    ]  # fmt: skip
    out: dict[str, tuple[float, float | None]] = {}
    for metric, name, kw, references in cases:
        impls = {"ours": getattr(ours_module, name)}
        if previous is not None:
            impls["previous"] = getattr(previous, name)
        for f in impls.values():
            f(*vols[0], spacing=spacing, **kw)
        times: dict[str, float] = dict.fromkeys(impls, float("inf"))
        values: dict[str, list[float]] = {}
        for _ in range(REPEAT):  # alternately, so that both see the same load
            for key, f in impls.items():
                took, values[key] = run(
                    lambda f=f, kw=kw: [f(a, b, spacing=spacing, **kw) for a, b in vols]
                )
                times[key] = min(times[key], took)
        refs = {}
        for key, ref in references.items():
            ref(vols[:1], t[:1])
            refs[key] = timed(lambda ref=ref: ref(vols, t), repeat=1 if key == "medpy" else REPEAT)
        fastest, ours = min(refs.values()), times["ours"]
        line = f"{metric}, {scenario}, {len(vols)} volumes of {size}^3: ours {ours:.3f} s; "
        before = None
        if previous is not None:
            diff = float(np.max(np.abs(np.subtract(values["ours"], values["previous"]))))
            same = "same values" if diff == 0 else f"values differ by up to {diff:.2g}"
            line += (
                f"previous {times['previous']:.3f} s ({times['previous'] / ours:.1f}x, {same}); "
            )
            before = fastest / times["previous"]
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in refs.items())
        print(f"{line}{parts}; speed-up vs fastest reference {fastest / ours:.1f}x")
        out[metric] = (fastest / ours, before)
    return out


def summary(ratios: dict[str, dict[str, tuple[float, float | None]]]) -> None:
    scenarios = list(ratios)
    print("speed-up of the surface metrics over the fastest reference (previous in brackets):")
    print(f"{'':14}" + "".join(f"{s:>24}" for s in scenarios))
    for metric in ratios[scenarios[0]]:
        cells = []
        for s in scenarios:
            now, before = ratios[s][metric]
            cells.append(f"{now:.1f}x" + (f" ({before:.1f}x)" if before is not None else ""))
        print(f"{metric:14}" + "".join(f"{c:>24}" for c in cells))


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
    parser.add_argument("--previous", default=PREVIOUS, metavar="REV",
                        help="git revision of segmentation.py to compare with")  # fmt: skip
    parser.add_argument("--only", choices=["dice", "distances", "auc", "froc"],
                        help="run one group of comparisons")  # fmt: skip
    args = parser.parse_args()
    n_small, n_large, size = (10, 3, 64) if args.quick else (100, 10, 128)
    if args.only in (None, "dice"):
        bench_dice(10 if args.quick else 100, size)
    if args.only in (None, "distances"):
        previous = previous_segmentation(args.previous)
        if previous is None:
            print(f"(git cannot show revision {args.previous}: no previous implementation)")
        summary({
            "small structures": bench_distances(
                "small structures", small_volumes(n_small, size, 2), previous),
            "large structures": bench_distances(
                "large structures", volumes(n_large, size, 1), previous),
        })  # fmt: skip
    if args.only in (None, "auc"):
        bench_auc(100_000 if args.quick else 1_000_000)
    if args.only in (None, "froc"):
        if args.quick:
            bench_froc(100, 20, 100)
        else:
            bench_froc(1000, 50, 1000)


if __name__ == "__main__":
    main()
