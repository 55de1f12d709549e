"""Classification metrics over per-case labels and per-class probabilities.

``y_true`` holds integer class indices, shape ``(n,)``; ``y_score`` holds one probability (or
score) per class, shape ``(n, n_classes)``. Binary tasks pass two columns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from medarena.metrics._registry import MetricInfo, register


def _binary_auc(positive: npt.NDArray[np.bool_], score: npt.NDArray[np.floating]) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic; ties count one half."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc(y_true: npt.NDArray[np.int_], y_score: npt.NDArray[np.floating]) -> float:
    """ROC AUC; for more than two classes the unweighted mean of one-vs-rest AUCs.

    Matches ``sklearn.metrics.roc_auc_score(y_true, y_score, multi_class="ovr",
    average="macro")``; a class absent from ``y_true`` is left out of the mean.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.shape[1] == 2:
        return _binary_auc(y_true == 1, y_score[:, 1])
    aucs = [_binary_auc(y_true == k, y_score[:, k]) for k in range(y_score.shape[1])]
    return float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")


def accuracy(y_true: npt.NDArray[np.int_], y_score: npt.NDArray[np.floating]) -> float:
    """Fraction of cases whose highest-scoring class is the true one."""
    y_true = np.asarray(y_true)
    return float(np.mean(np.argmax(y_score, axis=1) == y_true))


register(
    MetricInfo(
        name="auc",
        title="ROC AUC (macro one-vs-rest)",
        kind="classification",
        higher_is_better=True,
        range=(0.0, 1.0),
        compute=roc_auc,
    )
)
register(
    MetricInfo(
        name="accuracy",
        title="Accuracy",
        kind="classification",
        higher_is_better=True,
        range=(0.0, 1.0),
        compute=accuracy,
    )
)
