"""What the pages and the API show, loaded from the store and the task catalogue.

Plain dictionaries of JSON-ready values: the API returns them as they are and the templates
render them, so both always say the same thing. Nothing here imports ray, torch or Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from medarena.exceptions import PlatformError, UserError
from medarena.metrics import MetricInfo, get_metric
from medarena.numbers import missing_to_none, strict_json
from medarena.scoring.boards import Board, load_board
from medarena.store import ACTIVE, Store, StoredSubmission, StoredTrial, best_trial
from medarena.tasks import TaskCatalogue, TaskSpec

Curve = list[tuple[int, float]]
ACTIVE_STATES = ACTIVE  # queued, running, cancelling: the page refreshes

SPLIT_HASH_HELP = (
    "The hash of the task's data and its fixed train/validation/test split. Every score is "
    "stored with the hash it was computed on; results on a different split never share this "
    "leaderboard (the task's version is raised instead)."
)


def trial_curves(tracking_uri: str, run_id: str, *, metric: str) -> dict[int, Curve]:
    """Read a submission's learning curves from MLflow (imported only when asked)."""
    from medarena.tracking.curves import trial_curves as read

    return read(tracking_uri, run_id, metric=metric)


class NotFoundError(LookupError):
    """A task or submission that does not exist; the message says which ones do."""


def metric_json(info: MetricInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "title": info.title,
        "higher_is_better": info.higher_is_better,
        "range": strict_json(list(info.range)),
    }


def higher_is_better(metric: str) -> bool | None:
    """A metric's direction; ``None`` for a metric the registry does not know."""
    try:
        return get_metric(metric).higher_is_better
    except UserError:
        return None


def _iso(value: Any) -> str | None:
    """An ISO 8601 time in UTC (the store keeps naive UTC on SQLite), or ``None``."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).isoformat(timespec="seconds"))
    return str(value)


def board_rows(board: Board) -> list[dict[str, Any]]:
    """A leaderboard's JSON rows as the API serves them: the command line's, with ISO times."""
    rows = board.records()
    for row in rows:
        row["finished_at"] = _iso(pd.Timestamp(row["finished_at"]))
    return rows


@dataclass(frozen=True, slots=True)
class SubmissionPage:
    """What a submission's page shows: its detail (as the API returns it), the best trial's
    number (drawn bold) and the primary metric's direction."""

    detail: dict[str, Any]
    best_trial: int | None
    higher_is_better: bool


class Views:
    """Loads what the pages show from ``store`` and ``catalogue``."""

    def __init__(self, store: Store, catalogue: TaskCatalogue, tracking_uri: str | None) -> None:
        self.store = store
        self.catalogue = catalogue
        self.tracking_uri = tracking_uri

    def spec(self, name: str) -> TaskSpec:
        if name not in self.catalogue.names():
            known = ", ".join(self.catalogue.names()) or "(none)"
            raise NotFoundError(f"unknown task {name!r}; known tasks: {known}")
        return self.catalogue.get(name)

    def board(self, name: str) -> Board:
        return load_board(self.store, self.spec(name))

    def task_summaries(self) -> list[dict[str, Any]]:
        """Every task in the catalogue with its number of ranked entries and best value; a
        task whose task.yaml does not load is listed with the error."""
        rows: list[dict[str, Any]] = []
        for name in self.catalogue.names():
            try:
                board = self.board(name)
            except UserError as exc:
                rows.append({"name": name, "error": str(exc)})
                continue
            rows.append(
                {
                    "name": name,
                    "version": board.spec.version,
                    "kind": board.spec.kind,
                    "title": board.spec.title,
                    "primary_metric": board.primary.name,
                    "higher_is_better": board.primary.higher_is_better,
                    "submissions": len(board.frame),
                    "best": board.best(),
                }
            )
        return rows

    def task_detail(self, name: str) -> dict[str, Any]:
        """The spec summary of a task (what a participant needs to know to submit)."""
        board = self.board(name)
        spec = board.spec
        return {
            "name": spec.name,
            "version": spec.version,
            "kind": spec.kind,
            "title": spec.title,
            "description": spec.description.strip(),
            "classes": spec.classes,
            "primary_metric": board.primary.name,
            "metrics": [metric_json(m) for m in board.metrics],
            "budget": spec.budget.model_dump(),
            "split_hash": board.split_hash,
            "submissions": len(board.frame),
        }

    def _row(self, submission_id: int) -> StoredSubmission:
        row = self.store.submission(submission_id)
        if row is None:
            raise NotFoundError(
                f"no submission {submission_id}; the leaderboards at / link to every "
                "scored submission"
            )
        return row

    def case_scores(self, submission_id: int) -> list[dict[str, Any]]:
        """One record per test case of a scored submission: its per-case values."""
        self._row(submission_id)
        frame = self.store.case_scores(submission_id)
        return [
            {k: missing_to_none(v) for k, v in rec.items()}
            for rec in frame.to_dict(orient="records")
        ]

    def submission_detail(self, submission_id: int) -> dict[str, Any]:
        """Status, progress, scores, best parameters and trials of a submission."""
        return self._detail(submission_id)[0]

    def submission_page(self, submission_id: int) -> SubmissionPage:
        """The detail of a submission, with its best trial and its metric's direction."""
        detail, trials = self._detail(submission_id)
        higher = higher_is_better(detail["primary_metric"]) is not False
        best = best_trial(trials, higher_is_better=higher)
        return SubmissionPage(
            detail=detail,
            best_trial=None if best is None else best.number,
            higher_is_better=higher,
        )

    def _detail(self, submission_id: int) -> tuple[dict[str, Any], list[StoredTrial]]:
        row = self._row(submission_id)
        task = self.store.task(row.task_id)
        assert task is not None  # a foreign key
        progress = self.store.progress(submission_id)
        scores = {}
        primary_first = sorted(
            self.store.scores(submission_id), key=lambda s: s.metric != task.primary_metric
        )
        for score in primary_first:
            try:
                info: dict[str, Any] = metric_json(get_metric(score.metric))
            except UserError:
                info = {"name": score.metric, "title": score.metric, "higher_is_better": None}
            scores[score.metric] = {
                **info,
                "value": score.value,
                "ci": [score.ci_low, score.ci_high],
                "split_hash": score.split_hash,
            }
        stored_trials = self.store.trials(submission_id)
        trials = [
            {
                "number": t.number,
                "state": t.state,
                "attempts": t.attempts,
                "params": t.params,
                "value": t.value,
                "best_epoch": t.best_epoch,
                "epochs": t.epochs,
                "fit_seconds": t.fit_seconds,
                "error": t.error,
            }
            for t in stored_trials
        ]
        detail: dict[str, Any] = {
            "id": row.id,
            "task": task.name,
            "task_version": task.version,
            "task_title": task.title,
            "primary_metric": task.primary_metric,
            "submission": row.name,
            "team": row.team,
            "status": row.status,
            "progress": progress,
            "scores": scores,
            "best_params": row.best_params,
            "conventions": row.conventions,
            "trials": trials,
            "n_trials": row.n_trials,
            "seed": row.seed,
            "sha256": row.sha256,
            "split_hash": row.split_hash,
            "current_split": row.split_hash == task.split_hash,
            "mlflow_run_id": row.mlflow_run_id or None,
            "created_at": _iso(row.created_at),
            "finished_at": _iso(row.finished_at),
            "wall_seconds": row.wall_seconds,
            "error": row.error,
        }
        return detail, stored_trials

    def curves(self, detail: dict[str, Any]) -> tuple[dict[int, Curve], str]:
        """The submission's validation curves of its primary metric, and why there are none
        (an empty string when there are some)."""
        if not self.tracking_uri:
            return {}, "no MLflow tracking URI was given to the server"
        if not detail["mlflow_run_id"]:
            return {}, "this submission has no MLflow run"
        try:
            curves = trial_curves(
                self.tracking_uri, detail["mlflow_run_id"], metric=f"val_{detail['primary_metric']}"
            )
        except PlatformError as exc:
            return {}, str(exc)
        return curves, "" if curves else "no validation values were logged yet"
