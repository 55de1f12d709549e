"""Detection as a heatmap: the model predicts, per voxel, the logit of "a finding's centre".

Targets are Gaussian blobs at each finding (width a quarter of its diameter, at least a voxel),
so any dense network (a U-Net, a shallow CNN) can be trained with a per-voxel loss. Decoding
finds local maxima of the sigmoid heatmap and turns them into candidates with probabilities in
world millimetres, the LUNA16 form that FROC analysis scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medarena.metrics import (
    DetectionConventions,
    DetectionMatches,
    froc_bootstrap,
    get_metric,
    match_candidates,
    percentile_interval,
)
from medarena.metrics.detection import froc_summary
from medarena.tasks.kinds._base import Candidates, FloatArray, Reference, TaskKind
from medarena.tasks.kinds._scores import MetricValue, Scores
from medarena.tasks.readers import Lesions, voxel_to_world, world_to_voxel

MAX_CANDIDATES_PER_CASE = 50
MIN_PROBABILITY = 0.02


def heatmaps(reference: Reference, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """Gaussian target heatmaps ``(n, 1, *shape)``: 1 at each included finding's centre."""
    lesions = reference.lesions
    out = np.zeros((len(reference), 1, *shape), dtype=np.float32)
    if lesions is None:
        return out
    grid = np.indices(shape, dtype=np.float64)
    for case, xyz, diameter, excluded in zip(
        lesions.case_index, lesions.center_xyz, lesions.diameter_mm, lesions.excluded, strict=True
    ):
        if excluded:
            continue
        spacing, origin = reference.spacing[case], reference.origin[case]
        centre = world_to_voxel(xyz, spacing, origin)
        sigma_mm = np.maximum(max(diameter, 4.0) / 4.0, spacing)
        d2 = sum(((grid[a] - centre[a]) * spacing[a] / sigma_mm[a]) ** 2 for a in range(len(shape)))
        np.maximum(out[case, 0], np.exp(-0.5 * d2).astype(np.float32), out=out[case, 0])
    return out


def find_peaks(
    probability: npt.NDArray[np.float32], *, max_candidates: int = MAX_CANDIDATES_PER_CASE
) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Voxel indices and values of the highest local maxima (3-voxel neighbourhood)."""
    is_peak = (ndimage.maximum_filter(probability, size=3) == probability) & (
        probability >= MIN_PROBABILITY
    )
    idx = np.argwhere(is_peak)
    values = probability[is_peak].astype(np.float64)
    order = np.argsort(-values, kind="stable")[:max_candidates]
    return idx[order], values[order]


class Detection(TaskKind[Candidates, DetectionConventions]):
    name = "detection"
    contract = "a heatmap of logits of shape (batch, 1, *spatial) at the input's resolution"
    conventions_type = DetectionConventions

    def targets(self, reference: Reference, *, image_shape: tuple[int, ...]) -> npt.NDArray[Any]:
        return heatmaps(reference, image_shape)

    def output_channels(self, num_classes: int) -> int:
        return 1

    def logits_shape(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> tuple[int, ...]:
        return (n, 1, *input_shape[1:])

    def decode(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> Candidates:
        probability = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
        cases, centres, scores = [], [], []
        for i in range(len(probability)):
            idx, values = find_peaks(probability[i].astype(np.float32))
            cases.append(np.full(len(values), i, dtype=np.intp))
            centres.append(voxel_to_world(idx, spacing[i], origin[i]).reshape(-1, 3))
            scores.append(values)
        return Candidates(
            case_index=np.concatenate(cases),
            center_xyz=np.concatenate(centres),
            probability=np.concatenate(scores),
        )

    def concat(self, parts: list[Candidates], *, offsets: list[int]) -> Candidates:
        return Candidates(
            case_index=np.concatenate(
                [p.case_index + o for p, o in zip(parts, offsets, strict=True)]
            ),
            center_xyz=np.concatenate([p.center_xyz for p in parts]),
            probability=np.concatenate([p.probability for p in parts]),
        )

    def validation_scores(
        self, predictions: Candidates, reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        matches = self.match(predictions, _lesions(reference), n_scans=len(reference))
        return {name: get_metric(name).compute(matches) for name in metrics}

    # Scoring, and its pieces

    def score(
        self,
        predictions: Candidates,
        reference: Reference,
        *,
        conventions: DetectionConventions | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> Scores:
        conv = self.resolve(conventions)
        matches = self.match(
            predictions, _lesions(reference), n_scans=len(reference), conventions=conv
        )
        return Scores(
            self.aggregates(matches, conventions=conv, n_bootstrap=n_bootstrap, seed=seed),
            self.per_case(matches),
        )

    def match(
        self,
        candidates: Candidates,
        lesions: Lesions,
        *,
        n_scans: int,
        conventions: DetectionConventions | None = None,
    ) -> DetectionMatches:
        """LUNA16 matching of candidates to the findings of the same scans (excluded findings
        are neither hits nor false positives)."""
        conv = self.resolve(conventions)
        return match_candidates(
            n_scans=n_scans,
            lesion_scan=lesions.case_index,
            lesion_xyz=lesions.center_xyz,
            lesion_diameter_mm=lesions.diameter_mm,
            lesion_included=~lesions.excluded,
            candidate_scan=candidates.case_index,
            candidate_xyz=candidates.center_xyz,
            candidate_score=candidates.probability,
            default_diameter_mm=conv.default_diameter_mm,
        )

    def aggregates(
        self,
        matches: DetectionMatches,
        *,
        conventions: DetectionConventions | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> dict[str, MetricValue]:
        """CPM, sensitivity, false positives per scan and sensitivity at each operating point,
        each with its scan-level bootstrap interval."""
        conv = self.resolve(conventions)
        opts: dict[str, Any] = {
            "operating_points": conv.operating_points,
            "interpolation": conv.interpolation,
        }
        values = froc_summary(matches, **opts)
        boot = froc_bootstrap(matches, n_samples=n_bootstrap, seed=seed, **opts)
        by_name = boot.by_name(conv.points)
        return {
            name: MetricValue(v, percentile_interval(by_name[name])) for name, v in values.items()
        }

    def per_case(self, matches: DetectionMatches) -> dict[str, FloatArray]:
        """``lesions`` (included findings), ``detected`` (of those) and ``false_positives`` of
        each scan."""
        n = matches.n_scans
        detected = matches.lesion_scan[np.isfinite(matches.lesion_score)]
        return {
            "lesions": np.bincount(matches.lesion_scan, minlength=n).astype(np.float64),
            "detected": np.bincount(detected, minlength=n).astype(np.float64),
            "false_positives": np.bincount(matches.fp_scan, minlength=n).astype(np.float64),
        }


def _lesions(reference: Reference) -> Lesions:
    lesions = reference.lesions
    assert lesions is not None, "a detection reference holds its findings"
    return lesions


DETECTION = Detection()
