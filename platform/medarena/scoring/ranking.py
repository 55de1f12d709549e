"""Leaderboard ranking as pure functions over pandas frames (:mod:`.boards` loads them)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from medarena.metrics import MetricInfo
from medarena.numbers import missing_to_none

ENTRY_COLUMNS = [
    "submission", "team", "trials", "finished_at", "sha256", "mlflow_run_id", "sandboxed",
]  # fmt: skip


def leaderboard(scores: pd.DataFrame | None, *, metrics: list[MetricInfo]) -> pd.DataFrame:
    """Rank the latest scored run of every (team, submission) by ``metrics[0]``.

    ``scores`` has one row per submission run and metric (as ``Store.scores_frame`` returns).
    The result has one row per entry: ``rank``, the entry columns, and for each metric its value
    and ``<metric>_ci_low``/``<metric>_ci_high``. Ties share a rank (1, 1, 3); entries without a
    value for the primary metric come last, unranked.
    """
    columns = ["rank", *ENTRY_COLUMNS[:3]]
    for info in metrics:
        columns += [info.name, f"{info.name}_ci_low", f"{info.name}_ci_high"]
    columns += [*ENTRY_COLUMNS[3:], "submission_id"]
    if scores is None or scores.empty:
        return pd.DataFrame(columns=columns)

    if "sandboxed" not in scores:  # frames from before runs were marked
        scores = scores.assign(sandboxed=True)
    latest = scores.sort_values("finished_at").groupby(["team", "submission"])["submission_id"]
    keep = scores["submission_id"].isin(latest.last())
    rows = scores[keep]
    table = rows.drop_duplicates("submission_id").set_index("submission_id")[ENTRY_COLUMNS]
    wide = rows.set_index(["submission_id", "metric"])[["value", "ci_low", "ci_high"]].unstack()
    wide = wide.reindex(table.index)
    for info in metrics:
        for field, suffix in (("value", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high")):
            key = (field, info.name)
            table[info.name + suffix] = wide[key] if key in wide.columns else float("nan")

    primary = metrics[0]
    table["rank"] = (
        table[primary.name]
        .rank(method="min", ascending=not primary.higher_is_better, na_option="keep")
        .astype("Int64")
    )
    table = table.sort_values(["rank", "finished_at"], na_position="last", kind="stable")
    return table.reset_index()[columns]


def leaderboard_records(frame: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """JSON rows of a :func:`leaderboard` frame: rank, submission, team, trials, and per metric
    its value and ``<metric>_ci`` (``[low, high]``); missing values are ``None``."""
    rows = []
    for rec in frame.to_dict(orient="records"):
        rank = missing_to_none(rec["rank"])
        row: dict[str, Any] = {
            "rank": None if rank is None else int(rank),
            "submission": rec["submission"],
            "team": rec["team"],
            "trials": int(rec["trials"]),
        }
        for name in metrics:
            row[name] = missing_to_none(rec[name])
            row[f"{name}_ci"] = [
                missing_to_none(rec[f"{name}_ci_low"]),
                missing_to_none(rec[f"{name}_ci_high"]),
            ]
        if "submission_id" in rec:
            row["submission_id"] = int(rec["submission_id"])
        row["sha256"] = rec["sha256"]
        row["mlflow_run_id"] = rec["mlflow_run_id"]
        row["finished_at"] = str(rec["finished_at"])
        row["sandboxed"] = bool(rec.get("sandboxed", True))
        rows.append(row)
    return rows
