"""Score prediction files like a challenge's evaluation script (``medarena evaluate``).

Each ``evaluate_*`` function reads and validates the files (:mod:`.prediction_files`), computes
every registered metric of its kind with :mod:`medarena.metrics` (the same functions the
platform's scorer uses), a seeded bootstrap interval for every aggregate, and keeps per-case
values.

Worst-case policy for cases in the reference but missing from the predictions (each is listed
in ``missing_cases``):

* classification: probability 0 for the true class, the rest spread evenly over the other
  classes (wrong, and ranked last for the true class's AUC);
* segmentation: every metric of every label gets its worst value (Dice, IoU, NSD 0; HD and
  HD95 the image diagonal in mm);
* detection: a scan without candidates simply has none (it misses its lesions); such scans are
  listed too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.exceptions import PredictionFileError
from medarena.metrics import (
    ClassificationConventions,
    DetectionConventions,
    SegmentationConventions,
    aggregate,
    available_metrics,
    case_scores,
    match_candidates,
    per_class_statistics,
)
from medarena.metrics.classification import predicted_class
from medarena.scoring import prediction_files as pf
from medarena.scoring.score import (
    MetricValue,
    score_classification,
    score_detection,
    score_segmentation,
)


@dataclass
class EvaluationResult:
    """Aggregates, per-case values, conventions, and the cases scored by the worst-case policy."""

    kind: str
    metrics: dict[str, MetricValue]
    per_case: list[dict[str, Any]]
    conventions: dict[str, Any]
    missing_cases: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"metrics": {name: {"value", "ci"}}, "per_case", "conventions", …}``.

        NaN and infinite values become ``null`` (strict JSON has neither).
        """
        out: dict[str, Any] = _clean(
            {
                "kind": self.kind,
                "metrics": {
                    k: {"value": v.value, "ci": list(v.ci)} for k, v in self.metrics.items()
                },
                "per_case": self.per_case,
                "conventions": self.conventions,
                "missing_cases": self.missing_cases,
                **self.extra,
            }
        )
        return out


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _cases(reference_ids: list[str], cases_path: Path | None, reference_path: Path) -> list[str]:
    if cases_path is None:
        return reference_ids
    cases = pf.read_case_list(cases_path)
    known = set(reference_ids)
    for case in cases:
        if case not in known:
            raise PredictionFileError(
                f"{cases_path}: case {case!r} is not in the reference {reference_path}"
            )
    return cases


def _unknown(pred_ids: list[str], cases: list[str], path: Path) -> None:
    known = set(cases)
    for case in pred_ids:
        if case not in known:
            raise PredictionFileError(
                f"{path}: case {case!r} is not in the reference (or the --cases list); "
                "remove it or check its spelling"
            )


# --------------------------------------------------------------------------- classification


def evaluate_classification(
    reference: Path,
    predictions: Path,
    *,
    cases: Path | None = None,
    conventions: ClassificationConventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Score a ``case_id,0,1,…`` probability CSV against a ``case_id,label`` CSV."""
    conv = conventions or ClassificationConventions()
    ref = pf.read_classification_reference(reference)
    case_ids = _cases(list(ref), cases, reference)
    y_true = np.array([ref[c] for c in case_ids], dtype=np.int_)
    pred_ids, probs = pf.read_classification_predictions(
        predictions, n_classes=int(y_true.max()) + 1
    )
    _unknown(pred_ids, case_ids, predictions)
    n_classes = probs.shape[1]
    row = {c: i for i, c in enumerate(pred_ids)}
    scores = np.empty((len(case_ids), n_classes))
    missing: list[str] = []
    for i, case in enumerate(case_ids):
        if case in row:
            scores[i] = probs[row[case]]
        else:
            missing.append(case)
            scores[i] = 1.0 / (n_classes - 1)
            scores[i, y_true[i]] = 0.0
    try:
        metrics = score_classification(
            y_true, scores, conventions=conv, n_bootstrap=n_bootstrap, seed=seed
        )
    except ValueError as exc:
        raise PredictionFileError(f"{reference}: {exc}") from exc
    predicted = predicted_class(scores)
    per_case = [
        {
            "case_id": case,
            "label": int(y_true[i]),
            "predicted": int(predicted[i]),
            "correct": bool(predicted[i] == y_true[i]),
            "probability_of_label": float(scores[i, y_true[i]]),
            "missing": case in set(missing),
        }
        for i, case in enumerate(case_ids)
    ]
    stats = per_class_statistics(y_true, scores)
    per_class = {str(k): {name: float(v[k]) for name, v in stats.items()} for k in range(n_classes)}
    return EvaluationResult(
        "classification",
        metrics,
        per_case,
        conv.as_dict(),
        missing,
        {"per_class": per_class, "n_cases": len(case_ids)},
    )


# --------------------------------------------------------------------------- segmentation


def evaluate_segmentation(
    reference: Path,
    predictions: Path,
    *,
    cases: Path | None = None,
    conventions: SegmentationConventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Score a folder of predicted label maps against a folder of reference label maps."""
    conv = conventions or SegmentationConventions()
    ref_files = pf.segmentation_files(reference)
    pred_files = pf.segmentation_files(predictions)
    case_ids = _cases(list(ref_files), cases, reference)
    _unknown(list(pred_files), case_ids, predictions)
    refs = {c: pf.load_label_map(ref_files[c]) for c in case_ids}
    labels = sorted({int(v) for m in refs.values() for v in np.unique(m.array)} - {0})
    if not labels:
        raise PredictionFileError(f"{reference}: every reference label map is empty (all 0)")
    names = [info.name for info in available_metrics("segmentation")]
    worst = {info.name: info.worst for info in available_metrics("segmentation")}
    values = {name: np.empty((len(case_ids), len(labels))) for name in names}
    missing: list[str] = []
    per_case: list[dict[str, Any]] = []
    for i, case in enumerate(case_ids):
        ref_map = refs[case]
        if case not in pred_files:
            missing.append(case)
            diag = float(np.sqrt(np.sum((np.asarray(ref_map.array.shape) * ref_map.spacing) ** 2)))
            for name in names:
                values[name][i] = diag if math.isinf(worst[name]) else worst[name]
        else:
            pred_map = pf.load_label_map(pred_files[case])
            pf.check_same_grid(ref_map, pred_map, case)
            scores = case_scores(
                ref_map.array,
                pred_map.array,
                labels=labels,
                spacing=ref_map.spacing,
                conventions=conv,
            )
            for name in names:
                values[name][i] = scores[name]
        for j, label in enumerate(labels):
            row: dict[str, Any] = {"case_id": case, "label": label}
            row.update({name: float(values[name][i, j]) for name in names})
            row["missing"] = case in missing
            per_case.append(row)
    metrics = score_segmentation(values, conventions=conv, n_bootstrap=n_bootstrap, seed=seed)
    per_class = {
        str(label): {
            name: aggregate(values[name][:, j : j + 1], aggregation="class") for name in names
        }
        for j, label in enumerate(labels)
    }
    return EvaluationResult(
        "segmentation",
        metrics,
        per_case,
        {**conv.as_dict(), "labels": labels},
        missing,
        {"per_class": per_class, "n_cases": len(case_ids)},
    )


# --------------------------------------------------------------------------- detection


def _scan_index(ids: list[str], index: dict[str, int], path: Path) -> npt.NDArray[np.intp]:
    out = np.empty(len(ids), dtype=np.intp)
    for i, uid in enumerate(ids):
        if uid not in index:
            raise PredictionFileError(
                f"{path}: line {i + 2}: seriesuid {uid!r} is not in the list of scans "
                "(--cases, or the reference when --cases is not given)"
            )
        out[i] = index[uid]
    return out


def evaluate_detection(
    reference: Path,
    predictions: Path,
    *,
    cases: Path | None = None,
    excluded: Path | None = None,
    conventions: DetectionConventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Score LUNA16 candidates against LUNA16 annotations (and optional excluded findings).

    ``cases`` lists every scan; without it, the scans are those of the reference, so scans with
    no lesion are not counted in false positives per scan.
    """
    conv = conventions or DetectionConventions()
    ref = pf.read_detection_csv(reference, kind="reference")
    scans = pf.read_case_list(cases) if cases else list(dict.fromkeys(ref.seriesuid))
    if not scans:
        raise PredictionFileError(f"{reference}: no lesions and no --cases: nothing to score")
    index = {uid: i for i, uid in enumerate(scans)}
    pred = pf.read_detection_csv(predictions, kind="predictions")
    exc = pf.read_detection_csv(excluded, kind="reference") if excluded else None
    l_ids = ref.seriesuid + (exc.seriesuid if exc else [])
    l_scan = np.r_[
        _scan_index(ref.seriesuid, index, reference),
        _scan_index(exc.seriesuid, index, excluded) if exc and excluded else np.zeros(0, np.intp),
    ]
    l_xyz = np.concatenate([ref.xyz] + ([exc.xyz] if exc else []))
    l_diam = np.concatenate([ref.value] + ([exc.value] if exc else []))
    l_incl = np.r_[
        np.ones(len(ref.seriesuid), bool), np.zeros(len(l_ids) - len(ref.seriesuid), bool)
    ]
    c_scan = _scan_index(pred.seriesuid, index, predictions)
    matches = match_candidates(
        n_scans=len(scans),
        lesion_scan=l_scan,
        lesion_xyz=l_xyz,
        lesion_diameter_mm=l_diam,
        lesion_included=l_incl,
        candidate_scan=c_scan,
        candidate_xyz=pred.xyz,
        candidate_score=pred.value,
        default_diameter_mm=conv.default_diameter_mm,
    )
    metrics = score_detection(matches, conventions=conv, n_bootstrap=n_bootstrap, seed=seed)
    n_les = np.bincount(matches.lesion_scan, minlength=len(scans))
    n_det = np.bincount(
        matches.lesion_scan[np.isfinite(matches.lesion_score)], minlength=len(scans)
    )
    n_cand = np.bincount(c_scan, minlength=len(scans))
    n_fp = np.bincount(matches.fp_scan, minlength=len(scans))
    per_case = [
        {
            "case_id": uid,
            "lesions": int(n_les[i]),
            "detected": int(n_det[i]),
            "candidates": int(n_cand[i]),
            "false_positives": int(n_fp[i]),
            "missing": bool(n_cand[i] == 0),
        }
        for i, uid in enumerate(scans)
    ]
    missing = [uid for i, uid in enumerate(scans) if n_cand[i] == 0]
    return EvaluationResult(
        "detection", metrics, per_case, conv.as_dict(), missing, {"n_cases": len(scans)}
    )


def evaluate(
    kind: str,
    reference: Path,
    predictions: Path,
    *,
    cases: Path | None = None,
    excluded: Path | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """Dispatch on ``kind`` ("classification", "segmentation", "detection") with defaults."""
    if kind == "classification":
        return evaluate_classification(
            reference, predictions, cases=cases, n_bootstrap=n_bootstrap, seed=seed
        )
    if kind == "segmentation":
        return evaluate_segmentation(
            reference, predictions, cases=cases, n_bootstrap=n_bootstrap, seed=seed
        )
    if kind == "detection":
        return evaluate_detection(
            reference,
            predictions,
            cases=cases,
            excluded=excluded,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    raise PredictionFileError(
        f"unknown kind {kind!r}; use classification, segmentation or detection"
    )
