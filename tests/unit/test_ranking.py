"""Ranking: primary metric order, direction from metadata, ties, latest run per entry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from medarena.metrics import MetricInfo, get_metric
from medarena.scoring.ranking import leaderboard

T0 = datetime(2026, 1, 1)


def _rows(entries: list[tuple[int, str, float, float]]) -> pd.DataFrame:
    rows = []
    for sid, name, auc, acc in entries:
        for metric, value in (("auc", auc), ("accuracy", acc)):
            rows.append(
                {
                    "submission_id": sid,
                    "submission": name,
                    "team": "t",
                    "sha256": "x",
                    "trials": 2,
                    "finished_at": T0 + timedelta(minutes=sid),
                    "mlflow_run_id": "r",
                    "metric": metric,
                    "value": value,
                    "ci_low": value - 0.1,
                    "ci_high": value + 0.1,
                }
            )
    return pd.DataFrame(rows)


def test_ranked_by_primary_with_shared_ties() -> None:
    frame = _rows([(1, "a", 0.8, 0.5), (2, "b", 0.9, 0.4), (3, "c", 0.8, 0.9), (4, "d", 0.7, 0.9)])
    board = leaderboard(frame, metrics=[get_metric("auc"), get_metric("accuracy")])
    assert board["submission"].tolist() == ["b", "a", "c", "d"]
    assert board["rank"].tolist() == [1, 2, 2, 4]
    assert board.loc[0, "auc_ci_low"] == 0.9 - 0.1


def test_lower_is_better_metric_ranks_ascending() -> None:
    loss = MetricInfo(
        name="accuracy",
        title="x",
        kind="classification",
        higher_is_better=False,
        range=(0, 1),
        compute=get_metric("accuracy").compute,
    )
    board = leaderboard(_rows([(1, "a", 0.8, 0.5), (2, "b", 0.9, 0.4)]), metrics=[loss])
    assert board["submission"].tolist() == ["b", "a"]


def test_only_the_latest_run_of_an_entry_counts() -> None:
    frame = _rows([(1, "a", 0.95, 0.5), (2, "b", 0.9, 0.4), (3, "a", 0.6, 0.4)])
    board = leaderboard(frame, metrics=[get_metric("auc")])
    assert board["submission"].tolist() == ["b", "a"]
    assert board.loc[1, "auc"] == 0.6


def test_empty_leaderboard_has_the_columns() -> None:
    board = leaderboard(None, metrics=[get_metric("auc")])
    assert board.empty and {"rank", "submission", "auc", "auc_ci_low"} <= set(board.columns)
