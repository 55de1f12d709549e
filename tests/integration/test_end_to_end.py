"""End to end with the real components: Ray workers, Optuna on SQLite, Lightning, MLflow, SQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import optuna
import pytest
from spy import YAML, spy_report, spy_source

from conftest import CANARY
from medarena.arena import Arena
from medarena.exceptions import SubmissionError, TrialError
from medarena.tasks import TaskCatalogue, load_task_data
from medarena.testing import write_boring_submission

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _time_trial_jobs(monkeypatch: pytest.MonkeyPatch) -> list[dict[int, list[float]]]:
    """Spans of the trial jobs on the pool, one dict per sweep (append one before each):
    trial number -> [submitted, result collected], in ``time.perf_counter`` seconds."""
    from medarena.execution import TrialJob, TrialResult, WorkerPool

    spans: list[dict[int, list[float]]] = []
    submit, next_result = WorkerPool.submit, WorkerPool.next_result

    def is_trial(job: TrialJob) -> bool:
        return not job.dry_run and job.weights is None

    def timed_submit(pool: WorkerPool, job: TrialJob) -> None:
        if is_trial(job):
            spans[-1][job.key] = [time.perf_counter()]
        submit(pool, job)

    def timed_next_result(pool: WorkerPool, timeout: float | None = None) -> TrialResult | None:
        result = next_result(pool, timeout)
        if result is not None and is_trial(result.job):
            spans[-1][result.job.key].append(time.perf_counter())
        return result

    monkeypatch.setattr(WorkerPool, "submit", timed_submit)
    monkeypatch.setattr(WorkerPool, "next_result", timed_next_result)
    return spans


def test_two_baselines_are_trained_scored_tracked_and_ranked(
    arena: Arena, copy_baseline, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    spans = _time_trial_jobs(monkeypatch)
    spans.append({})
    cnn = arena.submit(copy_baseline("small-cnn"), "tiny-ct", trials=2, team="a")
    spans.append({})
    linear = arena.submit(copy_baseline("logistic-regression"), "tiny-ct", trials=2, team="b")

    for result, on_pool in zip((cnn, linear), spans, strict=True):
        assert len(result.trials) == 2
        assert all(t.state == "complete" for t in result.trials)
        assert result.scores["auc"].value > 0.6
        assert (
            result.scores["auc"].ci_low
            <= result.scores["auc"].value
            <= result.scores["auc"].ci_high
        )
        assert 0.0 <= result.scores["accuracy"].value <= 1.0
        # Two workers fit in parallel. Each fit happens within its job's time on the pool; the
        # two jobs were on the workers at the same time, so the trials took at most (less than)
        # the sum of their times, and the sweep at least its longest fit.
        assert sorted(on_pool) == [0, 1] and all(len(s) == 2 for s in on_pool.values())
        for trial in result.trials:
            start, end = on_pool[trial.number]
            assert trial.outcome.fit_seconds < end - start
        (a_start, a_end), (b_start, b_end) = on_pool.values()
        assert max(a_start, b_start) < min(a_end, b_end), on_pool  # they overlapped
        wall = max(a_end, b_end) - min(a_start, b_start)
        assert wall < (a_end - a_start) + (b_end - b_start)
        assert max(t.outcome.fit_seconds for t in result.trials) < result.sweep_seconds

    # Per-case values are kept for every test case; their mean is the aggregate.
    cases = arena.store.case_scores(cnn.submission_id)
    test_ids = load_task_data(
        TaskCatalogue(arena.config.catalogue_dir).get("tiny-ct")
    ).test_case_ids
    assert sorted(cases["case_id"]) == sorted(test_ids)
    assert cases["correct"].mean() == pytest.approx(cnn.scores["accuracy"].value)
    assert cases["probability_of_label"].between(0, 1).all()

    board = arena.leaderboard("tiny-ct")
    assert sorted(board["submission"]) == ["logistic-regression", "small-cnn"]
    assert board["rank"].tolist() == [1, 2]
    assert board["auc"].is_monotonic_decreasing

    # The Optuna study lives in its own database, not the leaderboard's.
    state = Path(arena.config.db_url.removeprefix("sqlite:///")).parent
    studies = f"sqlite:///{state / 'studies.db'}"
    complete = [
        trial
        for name in optuna.get_all_study_names(storage=studies)
        for trial in optuna.load_study(study_name=name, storage=studies).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
    ]
    assert len(complete) == 4
    tables = {
        r[0]
        for r in sqlite3.connect(state / "leaderboard.db").execute(
            "select name from sqlite_master where type = 'table'"
        )
    }
    assert "studies" not in tables and {"tasks", "submissions", "trials", "scores"} <= tables

    # MLflow: a parent run per submission with test metrics, a nested run per trial with curves.
    import mlflow

    # Through the environment, restored after the test: mlflow.set_tracking_uri would export it
    # to every later subprocess of the test session.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", arena.config.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["medarena/tiny-ct"], output_format="pandas")
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 2 and len(children) == 4
    assert set(parents["tags.submission"]) == {"small-cnn", "logistic-regression"}
    split_hash = load_task_data(TaskCatalogue(arena.config.catalogue_dir).get("tiny-ct")).split_hash
    assert set(runs["tags.split_hash"]) == {split_hash}
    assert parents["metrics.test_auc"].notna().all()
    assert set(children["tags.mlflow.parentRunId"]) == set(parents["run_id"])
    client = mlflow.MlflowClient(arena.config.tracking_uri)
    child = children.iloc[0]
    history = client.get_metric_history(child["run_id"], "val_auc")
    assert [m.step for m in history] == list(range(len(history))) and len(history) >= 1
    assert client.get_metric_history(child["run_id"], "train_loss")
    assert {"params.lr"} <= set(children.columns)

    # The scored model's weights are kept, in the home and in the parent run, and re-score to
    # the same values in a new inference sandbox.
    best = next(t for t in cnn.trials if t.params == cnn.best_params)
    kept = arena.config.artifacts / str(cnn.submission_id) / f"trial-{best.number:04d}.safetensors"
    logged = [a.path for a in client.list_artifacts(cnn.mlflow_run_id)]
    assert logged == [kept.name]
    local = Path(client.download_artifacts(cnn.mlflow_run_id, kept.name, str(state / "dl")))
    assert local.read_bytes() == kept.read_bytes()
    assert state in Path(client.get_run(cnn.mlflow_run_id).info.artifact_uri[7:]).parents
    _assert_rescores(arena, cnn, best, kept.read_bytes())


def _assert_rescores(arena: Arena, result, best, weights: bytes) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from medarena.arena._records import score_best
    from medarena.execution.supervisor import Supervisor
    from medarena.sandbox import SandboxLimits
    from medarena.submissions import load_submission
    from medarena.tuning.jobs import base_config, trial_seed

    spec = TaskCatalogue(arena.config.catalogue_dir).get("tiny-ct")
    data = load_task_data(spec)
    bundle = load_submission(arena.config.artifacts / str(result.submission_id) / "submission")
    config = base_config(bundle, spec, use_gpu=False)
    config = replace(config, params=best.params, seed=trial_seed(config, best.number))
    supervisor = Supervisor(data.worker_data(), limits=SandboxLimits())
    try:
        predicted = supervisor.predict(config, bundle.files, weights)
    finally:
        supervisor.close()
    assert predicted.ok, predicted.error
    again = score_best(spec, data, predicted.test_predictions).metrics
    assert {k: v.as_tuple() for k, v in again.items()} == {
        k: v.as_tuple() for k, v in result.scores.items()
    }


def test_validation_and_test_data_never_reach_a_training_sandbox(
    arena: Arena, make_submission
) -> None:  # type: ignore[no-untyped-def]
    """A submission that scans its memory and every file it can list finds its training targets,
    never the validation or test labels, nor the test inputs; its environment is built from
    nothing (the canary credential in the cluster's environment is not there)."""
    data = load_task_data(TaskCatalogue(arena.config.catalogue_dir).get("tiny-ct"))
    shipped = data.worker_data()
    targets = {
        "train targets": shipped.train_y,
        "val labels": data.reference("val").labels,
        "test labels": data.reference("test").labels,
        "test inputs": shipped.test_x,
    }
    folder = make_submission("spy", YAML, spy_source(targets, "classification"))
    with pytest.raises(SubmissionError, match="SPY-REPORT") as failed:
        arena.submit(folder, "tiny-ct", trials=1)
    report = spy_report(str(failed.value))
    assert report["found"] == ["train targets"]  # the scan works, and sees nothing else
    platform = ("MEDARENA", "MLFLOW", "RAY", "AWS", "PG", "DATABASE")
    assert CANARY not in report["env"] and "PATH" in report["env"]
    assert not [name for name in report["env"] if name.startswith(platform)]


WRONG_SHAPE = """
    from torch.nn import functional as F
    from boring import Boring

    class WrongShape(Boring):
        def forward(self, x):
            return super().forward(x)[:, :2]

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.linear(x.flatten(1)), y)
"""

BREAKS = """
    from boring import Boring

    class Breaks(Boring):
        def training_step(self, batch, batch_idx):
            if self.current_epoch >= 1:
                raise ValueError("boom in epoch 1")
            return super().training_step(batch, batch_idx)
"""


def test_a_failing_dry_run_writes_nothing(arena: Arena, tmp_path: Path) -> None:
    folder = write_boring_submission(
        tmp_path / "wrong-shape", name="wrong", variant=WRONG_SHAPE, entry_class="WrongShape",
        search_space={},
    )  # fmt: skip
    with pytest.raises(
        SubmissionError, match=r"(?s)dry run.*logits of shape \(batch, num_classes\)"
    ):
        arena.submit(folder, "tiny-ct", trials=1)
    assert arena.leaderboard("tiny-ct").empty
    task_id = arena.store.task_id("tiny-ct", 1)
    assert task_id is not None and arena.store.submissions(task_id) == []


def test_every_trial_failing_marks_the_submission_failed(arena: Arena, tmp_path: Path) -> None:
    folder = write_boring_submission(
        tmp_path / "breaks", name="breaks", variant=BREAKS, entry_class="Breaks", search_space={}
    )
    with pytest.raises(
        TrialError, match=r"(?s)every trial failed.*model\.py.*ValueError: boom in epoch 1"
    ):
        arena.submit(folder, "tiny-ct", trials=2)
    assert arena.leaderboard("tiny-ct").empty
    task_id = arena.store.task_id("tiny-ct", 1)
    assert task_id is not None
    (row,) = arena.store.submissions(task_id)
    assert row.status == "failed" and "boom in epoch 1" in row.error
