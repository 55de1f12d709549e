"""Classification metrics over per-case labels and per-class probabilities.

``y_true`` holds integer class indices, shape ``(n,)``; ``y_score`` holds one probability (or
score) per class, shape ``(n, n_classes)``. Binary tasks pass two columns (a 1-D ``y_score`` is
read as the score of class 1). Every function matches scikit-learn (the tests check it to 1e-6).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import numpy.typing as npt

from medarena.metrics._registry import MetricInfo, register
from medarena.metrics.conventions import AbsentClass, Average, MultiClass

FloatArray = npt.NDArray[np.float64]


def _as_inputs(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike
) -> tuple[npt.NDArray[np.int_], FloatArray]:
    labels = np.asarray(y_true).astype(np.int_, copy=False)
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim == 1:
        scores = np.stack([1.0 - scores, scores], axis=1)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"y_score must have shape (n, n_classes) with n={labels.shape[0]}, got {scores.shape}"
        )
    return labels, scores


def binary_auc(positive: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve with one sort: the Mann-Whitney U statistic, ties count one half.

    Equals ``sklearn.metrics.roc_auc_score(positive, score)``; NaN when one class is missing.
    """
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos = int(np.count_nonzero(pos))
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s)
    s_sorted = s[order]
    pos_sorted = pos[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    group_pos = np.add.reduceat(pos_sorted.astype(np.int64), starts)
    group_size = np.diff(np.r_[starts, s.size])
    group_neg = group_size - group_pos
    neg_below = np.cumsum(group_neg) - group_neg
    u = float(np.dot(group_pos, neg_below) + 0.5 * np.dot(group_pos, group_neg))
    return u / (n_pos * n_neg)


def _mean(values: list[float], weights: list[float] | None, absent: list[bool], rule: str) -> float:
    if any(absent):
        if rule == "error":
            raise ValueError("a class has no case in y_true; its AUC is undefined")
        if rule == "nan":
            return float("nan")
    keep = [i for i, a in enumerate(absent) if not a]
    if not keep:
        return float("nan")
    v = np.array([values[i] for i in keep])
    w = None if weights is None else np.array([weights[i] for i in keep])
    return float(np.average(v, weights=w))


def roc_auc(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    *,
    multi_class: MultiClass = "ovr",
    average: Average = "macro",
    absent_class: AbsentClass = "skip",
) -> float:
    """ROC AUC: binary, or multi-class one-vs-rest / one-vs-one with macro or weighted averaging.

    As ``sklearn.metrics.roc_auc_score(y_true, y_score, multi_class=..., average=...,
    labels=range(n_classes))``. ``absent_class`` says what a class without cases in ``y_true``
    does: "skip" leaves it out (scikit-learn's one-vs-one), "nan" makes the result NaN
    (scikit-learn's one-vs-rest), "error" raises ``ValueError``.
    """
    labels, scores = _as_inputs(y_true, y_score)
    n_classes = scores.shape[1]
    if n_classes == 2:
        return binary_auc(labels == 1, scores[:, 1])
    counts = np.bincount(labels, minlength=n_classes)
    absent = [bool(c == 0) for c in counts]
    if multi_class == "ovr":
        aucs = [
            binary_auc(labels == k, scores[:, k]) if counts[k] else float("nan")
            for k in range(n_classes)
        ]
        weights = [float(c) for c in counts] if average == "weighted" else None
        return _mean(aucs, weights, absent, absent_class)
    present = [k for k in range(n_classes) if counts[k]]
    if any(absent) and absent_class != "skip":
        return _mean([0.0], None, [True], absent_class)
    pair_scores: list[float] = []
    prevalence: list[float] = []
    for a, b in combinations(present, 2):
        mask = (labels == a) | (labels == b)
        auc_a = binary_auc(labels[mask] == a, scores[mask, a])
        auc_b = binary_auc(labels[mask] == b, scores[mask, b])
        pair_scores.append((auc_a + auc_b) / 2.0)
        prevalence.append(float(mask.mean()))
    if not pair_scores:
        return float("nan")
    return float(np.average(pair_scores, weights=prevalence if average == "weighted" else None))


def predicted_class(y_score: npt.ArrayLike) -> npt.NDArray[np.int_]:
    """The highest-scoring class of each case (the first one on ties, as ``np.argmax``)."""
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim == 1:
        return (scores > 0.5).astype(np.int_)
    return np.asarray(np.argmax(scores, axis=1), dtype=np.int_)


def accuracy(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Fraction of cases whose highest-scoring class is the true one (``accuracy_score``)."""
    labels, scores = _as_inputs(y_true, y_score)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def confusion_matrix(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, n_classes: int
) -> npt.NDArray[np.int64]:
    """Counts ``[true, predicted]``, as ``sklearn.metrics.confusion_matrix(labels=range(C))``."""
    t = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_pred).astype(np.int64)
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def per_class_statistics(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> dict[str, FloatArray]:
    """Per-class sensitivity, specificity, PPV and F1 of the argmax prediction (one-vs-rest).

    Undefined ratios (0/0) are NaN, as scikit-learn's ``zero_division=np.nan``: sensitivity is
    ``recall_score(average=None)``, PPV ``precision_score``, F1 ``f1_score``, and specificity is
    the recall of "not this class".
    """
    labels, scores = _as_inputs(y_true, y_score)
    n_classes = scores.shape[1]
    cm = confusion_matrix(labels, np.argmax(scores, axis=1), n_classes=n_classes).astype(float)
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = cm.sum() - tp - fn - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "sensitivity": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }


def balanced_accuracy(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Mean sensitivity over the classes present in ``y_true`` (``balanced_accuracy_score``)."""
    labels, scores = _as_inputs(y_true, y_score)
    sens = per_class_statistics(labels, scores)["sensitivity"]
    present = np.bincount(labels, minlength=scores.shape[1]) > 0
    return float(np.mean(sens[present])) if present.any() else float("nan")


def f1_macro(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Unweighted mean of per-class F1 over defined classes (``f1_score(average="macro")``)."""
    f1 = per_class_statistics(y_true, y_score)["f1"]
    f1 = f1[~np.isnan(f1)]
    return float(f1.mean()) if f1.size else float("nan")


def top_k_accuracy(y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, k: int = 2) -> float:
    """Fraction of cases whose true class is among the ``k`` highest scores.

    As ``sklearn.metrics.top_k_accuracy_score`` for three or more classes, including its tie
    rule (among equal scores the higher class index ranks first).
    """
    labels, scores = _as_inputs(y_true, y_score)
    if labels.size == 0:
        return float("nan")
    ranked = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float(np.mean((ranked == labels[:, None]).any(axis=1)))


def case_correct(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Per-case correctness of the argmax prediction (the per-case values kept for statistics)."""
    labels, scores = _as_inputs(y_true, y_score)
    return np.asarray(np.argmax(scores, axis=1) == labels)


for _info in (
    MetricInfo(
        "auc",
        "ROC AUC (macro one-vs-rest)",
        "classification",
        True,
        (0.0, 1.0),
        roc_auc,
        "sklearn.metrics.roc_auc_score",
    ),
    MetricInfo(
        "accuracy",
        "Accuracy",
        "classification",
        True,
        (0.0, 1.0),
        accuracy,
        "sklearn.metrics.accuracy_score",
    ),
    MetricInfo(
        "balanced_accuracy",
        "Balanced accuracy",
        "classification",
        True,
        (0.0, 1.0),
        balanced_accuracy,
        "sklearn.metrics.balanced_accuracy_score",
    ),
    MetricInfo(
        "top_k_accuracy",
        "Top-k accuracy",
        "classification",
        True,
        (0.0, 1.0),
        top_k_accuracy,
        "sklearn.metrics.top_k_accuracy_score",
    ),
    MetricInfo(
        "f1",
        "F1 (macro)",
        "classification",
        True,
        (0.0, 1.0),
        f1_macro,
        'sklearn.metrics.f1_score(average="macro")',
    ),
):
    register(_info)
