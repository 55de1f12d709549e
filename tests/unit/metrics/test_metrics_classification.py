"""Classification metrics against scikit-learn on random and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from medarena.metrics import (
    accuracy,
    balanced_accuracy,
    binary_auc,
    bootstrap_ci,
    confusion_matrix,
    f1_macro,
    get_metric,
    per_class_statistics,
    roc_auc,
    top_k_accuracy,
)


def _data(seed: int, n: int, n_classes: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)  # every class present
    s = rng.dirichlet(np.ones(n_classes), n)
    if ties:
        s = np.round(s, 1)
        s /= s.sum(axis=1, keepdims=True)
    return y, s


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ties", [False, True])
def test_binary_auc(seed: int, ties: bool) -> None:
    y, s = _data(seed, 300, 2, ties)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s[:, 1]), abs=1e-12)
    assert binary_auc(y == 1, s[:, 1]) == pytest.approx(skm.roc_auc_score(y, s[:, 1]), abs=1e-12)


@pytest.mark.parametrize("multi_class", ["ovr", "ovo"])
@pytest.mark.parametrize("average", ["macro", "weighted"])
@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_auc(multi_class, average, ties) -> None:
    y, s = _data(7, 400, 4, ties)
    expected = skm.roc_auc_score(y, s, multi_class=multi_class, average=average)
    got = roc_auc(y, s, multi_class=multi_class, average=average)
    assert got == pytest.approx(expected, abs=1e-12)


def test_absent_class_conventions() -> None:
    y, s = _data(3, 200, 4)
    y[y == 3] = 0  # class 3 absent
    with pytest.warns(skm._ranking.UndefinedMetricWarning):
        assert np.isnan(skm.roc_auc_score(y, s, multi_class="ovr", labels=[0, 1, 2, 3]))
    assert np.isnan(roc_auc(y, s, absent_class="nan"))
    per_class = [skm.roc_auc_score(y == k, s[:, k]) for k in range(3)]
    assert roc_auc(y, s, absent_class="skip") == pytest.approx(np.mean(per_class), abs=1e-12)
    ovo = skm.roc_auc_score(y, s, multi_class="ovo", labels=[0, 1, 2, 3])
    assert roc_auc(y, s, multi_class="ovo") == pytest.approx(ovo, abs=1e-12)
    with pytest.raises(ValueError, match="no case"):
        roc_auc(y, s, absent_class="error")


@pytest.mark.parametrize("seed", range(3))
def test_label_metrics(seed: int) -> None:
    y, s = _data(seed, 250, 5, ties=True)
    pred = np.argmax(s, axis=1)
    assert accuracy(y, s) == pytest.approx(skm.accuracy_score(y, pred))
    assert balanced_accuracy(y, s) == pytest.approx(skm.balanced_accuracy_score(y, pred))
    for k in (1, 2, 3):
        expected = skm.top_k_accuracy_score(y, s, k=k, labels=range(5))
        assert top_k_accuracy(y, s, k=k) == pytest.approx(expected)
    np.testing.assert_array_equal(
        confusion_matrix(y, pred, n_classes=5), skm.confusion_matrix(y, pred, labels=range(5))
    )
    stats = per_class_statistics(y, s)
    kw = {"labels": range(5), "average": None, "zero_division": np.nan}
    np.testing.assert_allclose(stats["sensitivity"], skm.recall_score(y, pred, **kw))
    np.testing.assert_allclose(stats["ppv"], skm.precision_score(y, pred, **kw))
    np.testing.assert_allclose(stats["f1"], skm.f1_score(y, pred, **kw))
    spec = [skm.recall_score(y != k, pred != k) for k in range(5)]
    np.testing.assert_allclose(stats["specificity"], spec)
    expected_f1 = skm.f1_score(y, pred, average="macro", zero_division=np.nan)
    assert f1_macro(y, s) == pytest.approx(expected_f1)


def test_registry_contract_and_bootstrap() -> None:
    y, s = _data(1, 120, 3)
    info = get_metric("auc")
    assert info.higher_is_better and info.range == (0.0, 1.0) and info.kind == "classification"
    assert info.compute(y, s) == pytest.approx(skm.roc_auc_score(y, s, multi_class="ovr"))
    low, high = bootstrap_ci(info.compute, y, s, n_samples=50, seed=0)
    assert low <= info.compute(y, s) <= high
    assert bootstrap_ci(info.compute, y, s, n_samples=50, seed=0) == (low, high)
