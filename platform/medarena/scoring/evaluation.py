"""Score prediction files like a challenge's evaluation script (``medarena evaluate``).

Each ``evaluate_*`` function reads and validates the files (:mod:`.prediction_files`) and hands
the arrays to its task kind (:mod:`medarena.tasks.kinds`), which scores them as the platform's
scorer does: every registered metric of the kind, a seeded bootstrap interval for every
aggregate, and per-case values; this module only lays them out per case.

Worst-case policy for cases in the reference but missing from the predictions (each is listed
in ``missing_cases``), the kind's own:

* classification: probability 0 for the true class, the rest spread evenly over the other
  classes (wrong, and ranked last for the true class's AUC; ``Classification.worst_case``);
* segmentation: every metric of every label gets its worst value (Dice, IoU, NSD 0; HD and
  HD95 the image diagonal in mm; ``Segmentation.worst_values``);
* detection: a scan without candidates simply has none (it misses its lesions); such scans are
  listed too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from medarena.exceptions import PredictionFileError
from medarena.metrics import (
    ClassificationConventions,
    DetectionConventions,
    SegmentationConventions,
)
from medarena.numbers import strict_json
from medarena.scoring import prediction_files as pf
from medarena.tasks.kinds import (
    CLASSIFICATION,
    DETECTION,
    SEGMENTATION,
    Candidates,
    MetricValue,
    get_kind,
)
from medarena.tasks.readers import Lesions


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
        out: dict[str, Any] = strict_json(
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
    kind = CLASSIFICATION
    conv = kind.resolve(conventions)
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
            scores[i] = kind.worst_case(int(y_true[i]), n_classes)
    try:
        metrics = kind.aggregates(
            y_true, scores, conventions=conv, n_bootstrap=n_bootstrap, seed=seed
        )
    except ValueError as exc:
        raise PredictionFileError(f"{reference}: {exc}") from exc
    predicted = kind.predicted(scores)
    values = kind.per_case(y_true, scores)
    per_case = [
        {
            "case_id": case,
            "label": int(y_true[i]),
            "predicted": int(predicted[i]),
            "correct": bool(values["correct"][i]),
            "probability_of_label": float(values["probability_of_label"][i]),
            "missing": case in set(missing),
        }
        for i, case in enumerate(case_ids)
    ]
    return EvaluationResult(
        kind.name,
        metrics,
        per_case,
        conv.as_dict(),
        missing,
        {"per_class": kind.per_class(y_true, scores), "n_cases": len(case_ids)},
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
    kind = SEGMENTATION
    conv = kind.resolve(conventions)
    ref_files = pf.segmentation_files(reference)
    pred_files = pf.segmentation_files(predictions)
    case_ids = _cases(list(ref_files), cases, reference)
    _unknown(list(pred_files), case_ids, predictions)
    refs = {c: pf.load_label_map(ref_files[c]) for c in case_ids}
    labels = kind.labels(m.array for m in refs.values())
    if not labels:
        raise PredictionFileError(f"{reference}: every reference label map is empty (all 0)")
    names = kind.metric_names()
    values = {name: np.empty((len(case_ids), len(labels))) for name in names}
    missing: list[str] = []
    per_case: list[dict[str, Any]] = []
    for i, case in enumerate(case_ids):
        ref_map = refs[case]
        case_values: dict[str, Any]
        if case not in pred_files:
            missing.append(case)
            case_values = kind.worst_values(ref_map.array.shape, ref_map.spacing)
        else:
            pred_map = pf.load_label_map(pred_files[case])
            pf.check_same_grid(ref_map, pred_map, case)
            case_values = kind.case_values(
                ref_map.array,
                pred_map.array,
                labels=labels,
                spacing=ref_map.spacing,
                conventions=conv,
            )
        for name in names:
            values[name][i] = case_values[name]
        for j, label in enumerate(labels):
            row: dict[str, Any] = {"case_id": case, "label": label}
            row.update({name: float(values[name][i, j]) for name in names})
            row["missing"] = case in missing
            per_case.append(row)
    metrics = kind.aggregates(values, conventions=conv, n_bootstrap=n_bootstrap, seed=seed)
    return EvaluationResult(
        kind.name,
        metrics,
        per_case,
        {**conv.as_dict(), "labels": labels},
        missing,
        {"per_class": kind.per_class(values, labels), "n_cases": len(case_ids)},
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
    kind = DETECTION
    conv = kind.resolve(conventions)
    ref = pf.read_detection_csv(reference, kind="reference")
    scans = pf.read_case_list(cases) if cases else list(dict.fromkeys(ref.seriesuid))
    if not scans:
        raise PredictionFileError(f"{reference}: no lesions and no --cases: nothing to score")
    index = {uid: i for i, uid in enumerate(scans)}
    pred = pf.read_detection_csv(predictions, kind="predictions")
    exc = pf.read_detection_csv(excluded, kind="reference") if excluded else None
    ref_scan = _scan_index(ref.seriesuid, index, reference)
    exc_scan = (
        _scan_index(exc.seriesuid, index, excluded) if exc and excluded else np.zeros(0, np.intp)
    )
    lesions = Lesions(
        case_index=np.r_[ref_scan, exc_scan],
        center_xyz=np.concatenate([ref.xyz] + ([exc.xyz] if exc else [])),
        diameter_mm=np.concatenate([ref.value] + ([exc.value] if exc else [])),
        excluded=np.r_[np.zeros(len(ref_scan), bool), np.ones(len(exc_scan), bool)],
    )
    candidates = Candidates(
        case_index=_scan_index(pred.seriesuid, index, predictions),
        center_xyz=pred.xyz,
        probability=pred.value,
    )
    matches = kind.match(candidates, lesions, n_scans=len(scans), conventions=conv)
    metrics = kind.aggregates(matches, conventions=conv, n_bootstrap=n_bootstrap, seed=seed)
    values = kind.per_case(matches)
    n_cand = np.bincount(candidates.case_index, minlength=len(scans))
    per_case = [
        {
            "case_id": uid,
            "lesions": int(values["lesions"][i]),
            "detected": int(values["detected"][i]),
            "candidates": int(n_cand[i]),
            "false_positives": int(values["false_positives"][i]),
            "missing": bool(n_cand[i] == 0),
        }
        for i, uid in enumerate(scans)
    ]
    missing = [uid for i, uid in enumerate(scans) if n_cand[i] == 0]
    return EvaluationResult(
        kind.name, metrics, per_case, conv.as_dict(), missing, {"n_cases": len(scans)}
    )


class Evaluator(Protocol):
    """The evaluation of one kind's files, as :func:`evaluate` calls it."""

    def __call__(
        self,
        reference: Path,
        predictions: Path,
        *,
        cases: Path | None,
        excluded: Path | None,
        n_bootstrap: int,
        seed: int,
    ) -> EvaluationResult: ...


def _no_exclusions(function: Callable[..., EvaluationResult]) -> Evaluator:
    """``function`` as an :class:`Evaluator` (excluded findings are detection's alone)."""

    def evaluate_files(
        reference: Path,
        predictions: Path,
        *,
        cases: Path | None,
        excluded: Path | None,
        n_bootstrap: int,
        seed: int,
    ) -> EvaluationResult:
        return function(reference, predictions, cases=cases, n_bootstrap=n_bootstrap, seed=seed)

    return evaluate_files


EVALUATORS: dict[str, Evaluator] = {
    CLASSIFICATION.name: _no_exclusions(evaluate_classification),
    SEGMENTATION.name: _no_exclusions(evaluate_segmentation),
    DETECTION.name: evaluate_detection,
}
"""The evaluation of each kind's files, by the kind's name."""


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
    """Score the files of a task of ``kind`` ("classification", "segmentation", "detection")
    with the kind's default conventions; ``excluded`` applies to detection only."""
    try:
        name = get_kind(kind).name
    except KeyError:
        *first, last = EVALUATORS
        raise PredictionFileError(
            f"unknown kind {kind!r}; use {', '.join(first)} or {last}"
        ) from None
    return EVALUATORS[name](
        reference, predictions, cases=cases, excluded=excluded, n_bootstrap=n_bootstrap, seed=seed
    )
