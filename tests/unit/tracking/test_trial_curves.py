"""Learning curves written by the Tracker are read back per trial by ``trial_curves``."""

from __future__ import annotations

from pathlib import Path

import pytest

from medarena.exceptions import PlatformError
from medarena.tracking import Tracker, trial_curves


def test_curves_round_trip(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, experiment="tiny-ct")
    parent = tracker.start_submission(name="cnn", tags={}, params={})
    for number, values in ((0, [0.5, 0.7, 0.65]), (1, [0.6, float("nan")])):
        tracker.log_trial(
            parent,
            number=number,
            params={"lr": 0.1},
            history=[{"epoch": e, "val_auc": v, "train_loss": 1.0} for e, v in enumerate(values)],
            summary={"best_val_auc": max(values)},
            tags={},
            failed=False,
        )
    other = tracker.start_submission(name="other", tags={}, params={})
    tracker.log_trial(
        other, number=0, params={}, history=[{"epoch": 0, "val_auc": 0.1}], summary={}, tags={},
        failed=False,
    )  # fmt: skip

    curves = trial_curves(uri, parent, metric="val_auc")
    assert curves == {0: [(0, 0.5), (1, 0.7), (2, 0.65)], 1: [(0, 0.6)]}
    assert trial_curves(uri, parent, metric="val_dice") == {}
    with pytest.raises(PlatformError, match="cannot read the runs of nope"):
        trial_curves(uri, "nope", metric="val_auc")


def test_trials_a_killed_driver_logged_but_never_stored_are_discarded(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, experiment="tiny-ct")
    parent, other = (tracker.start_submission(name=n, tags={}, params={}) for n in "ab")
    for run, number in ((parent, 0), (parent, 1), (parent, 2), (other, 1)):
        tracker.log_trial(
            run, number=number, params={}, history=[{"epoch": 0, "val_auc": 0.5 + number / 10}],
            summary={}, tags={}, failed=False,
        )  # fmt: skip

    assert tracker.discard_unrecorded_trials(parent, {0, 2}) == [1]
    assert set(trial_curves(uri, parent, metric="val_auc")) == {0, 2}
    assert set(trial_curves(uri, other, metric="val_auc")) == {1}  # another submission's trial
    assert tracker.discard_unrecorded_trials(parent, {0, 2}) == []
