"""Everything a submission leaves behind, written in an order that survives a crash.

Trials are recorded durably (the best trial's weights as ``safetensors``, the MLflow run, the
store row) before the study hears of them; the submitted code is kept so that a submission can be
resumed from the artifacts alone; a submission ends scored (with per-case values and the conventions
that produced them), failed or cancelled, in the store and in MLflow alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medarena.arena._run import (
    CANCELLED,
    Run,
    SubmissionResult,
    TrialCallback,
    error_text,
    operator_text,
)
from medarena.exceptions import PlatformError
from medarena.store import Status, TrialState
from medarena.tasks import TaskData, TaskSpec

if TYPE_CHECKING:
    from medarena.scoring.score import Scores
    from medarena.store import Store
    from medarena.submissions import SubmissionBundle
    from medarena.tuning import SweepProgress, SweepResult, TrialRecord


class Records:
    """A submission's records in the leaderboard ``store`` and under ``artifacts``."""

    def __init__(self, store: Store, artifacts: Path) -> None:
        self.store = store
        self.artifacts = artifacts

    def code_dir(self, submission_id: int) -> Path:
        return self.artifacts / str(submission_id) / "submission"

    def weights_path(self, submission_id: int, number: int) -> Path:
        """The best trial's weights (plain tensors: nothing here is ever unpickled)."""
        return self.artifacts / str(submission_id) / f"trial-{number:04d}.safetensors"

    def keep_code(self, submission_id: int, bundle: SubmissionBundle) -> None:
        """Copy the submitted files, so that the submission can be resumed from them alone."""
        folder = self.code_dir(submission_id)
        for name, data in bundle.files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def recorded_trials(self, submission_id: int) -> dict[int, TrialRecord]:
        """The trials a previous driver recorded, with the best one's weights."""
        from medarena.execution.supervisor import TrialOutcome
        from medarena.tuning import TrialRecord

        records = {}
        for row in self.store.trials(submission_id):
            path = self.weights_path(submission_id, row.number)
            outcome = TrialOutcome(
                ok=row.state is TrialState.COMPLETE,
                best_value=math.nan if row.value is None else row.value,
                best_epoch=row.best_epoch,
                epochs=row.epochs,
                fit_seconds=row.fit_seconds,
                error=row.error,
                weights=path.read_bytes() if path.exists() else None,
            )
            records[row.number] = TrialRecord(
                row.number,
                row.params,
                row.state,
                outcome,
                attempts=row.attempts,
            )
        return records

    def trial_recorder(
        self, run: Run, finished: dict[int, TrialRecord], on_trial: TrialCallback | None
    ) -> TrialCallback:
        """The sweep's ``on_trial``: records each trial durably (the best one's weights,
        MLflow, the store) before the study hears of it, then calls ``on_trial``. MLflow runs
        of trials a killed driver logged but never stored are discarded first: they run again."""
        submission_id, tracker, parent, tags = run.submission_id, run.tracker, run.parent, run.tags
        primary = run.spec.metrics.primary
        tracker.discard_unrecorded_trials(parent, set(finished))
        kept: list[Path] = [
            p for n in finished if (p := self.weights_path(submission_id, n)).exists()
        ]

        def record(trial: TrialRecord, progress: SweepProgress) -> None:
            # Durable before the study hears of it: weights (of a new best), MLflow, store.
            outcome = trial.outcome
            best = progress.best_number == trial.number
            path = self.weights_path(submission_id, trial.number)
            if best and outcome.weights is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial")
                partial.write_bytes(outcome.weights)
                partial.replace(path)
            tracker.log_trial(
                parent,
                number=trial.number,
                params=trial.params,
                history=outcome.history,
                summary={
                    f"best_val_{primary}": outcome.best_value,
                    "fit_seconds": outcome.fit_seconds,
                    "attempts": float(trial.attempts),
                },
                tags=tags,
                failed=trial.state is TrialState.FAILED,
            )
            self.store.add_trial(
                submission_id,
                number=trial.number,
                state=trial.state,
                params=trial.params,
                value=outcome.best_value,
                best_epoch=outcome.best_epoch,
                epochs=outcome.epochs,
                fit_seconds=outcome.fit_seconds,
                error=outcome.error,
                attempts=trial.attempts,
            )
            if best and path.exists():  # older bests' weights are no longer needed
                for old in kept:
                    old.unlink(missing_ok=True)
                kept[:] = [path]
            if on_trial is not None:
                on_trial(trial, progress)

        return record

    def failed(self, run: Run, exc: BaseException) -> None:
        """The store (public) gets :func:`error_text`; MLflow (the operator's) the whole."""
        self.store.finish_submission(run.submission_id, status=Status.FAILED, error=error_text(exc))
        run.tracker.finish_submission(
            run.parent, metrics={}, tags={"error": operator_text(exc)[:5000]}, failed=True
        )

    def cancelled(self, run: Run) -> None:
        self.store.finish_submission(run.submission_id, status=Status.CANCELLED, error=CANCELLED)
        run.tracker.finish_submission(
            run.parent, metrics={}, tags={"status": Status.CANCELLED.value}, failed=True
        )

    def scored(self, run: Run, sweep: SweepResult, scored: Scores) -> SubmissionResult:
        conventions = run.spec.conventions().as_dict()
        scores = scored.metrics
        case_ids = run.runtime.data.test_case_ids.tolist()
        self.store.finish_submission(
            run.submission_id,
            status=Status.SCORED,
            scores={name: s.as_tuple() for name, s in scores.items()},
            case_scores={name: dict(zip(case_ids, v.tolist(), strict=True))
                         for name, v in scored.per_case.items()},
            best_params=sweep.best.params,
            conventions=conventions,
            wall_seconds=sweep.wall_seconds,
            sandboxed=sweep.best.outcome.sandboxed,
        )  # fmt: skip
        test_metrics = {f"test_{k}": v.value for k, v in scores.items()}
        test_metrics["sweep_seconds"] = sweep.wall_seconds
        tags = {
            "best_trial": str(sweep.best.number),
            "study": sweep.study_name,
            "conventions": json.dumps(conventions, sort_keys=True),
            "sandboxed": str(sweep.best.outcome.sandboxed).lower(),
        }
        weights = self.weights_path(run.submission_id, sweep.best.number)
        run.tracker.finish_submission(
            run.parent,
            metrics=test_metrics,
            tags=tags,
            failed=False,
            artifacts=(weights,) if weights.exists() else (),
        )
        return SubmissionResult(
            submission_id=run.submission_id,
            task=run.spec.name,
            name=run.bundle.spec.name,
            team=run.team,
            split_hash=run.runtime.data.split_hash,
            scores=scores,
            conventions=conventions,
            best_params=sweep.best.params,
            trials=sweep.trials,
            sweep_seconds=sweep.wall_seconds,
            workers=run.pool.size,
            mlflow_run_id=run.parent,
        )


def score_best(spec: TaskSpec, data: TaskData, predictions: Any) -> Scores:
    """The best model's test predictions against the hidden labels: the task's metrics and
    the per-case values."""
    from medarena.scoring.score import Scores, score_predictions

    if predictions is None:
        raise PlatformError("the best trial returned no test predictions")
    scores = score_predictions(
        spec.kind, predictions, data.reference("test"), conventions=spec.conventions(),
        seed=spec.budget.seed,
    )  # fmt: skip
    return Scores({name: scores.metrics[name] for name in spec.metrics.names}, scores.per_case)
