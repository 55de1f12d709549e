"""The submission queue: states in the store, fair sharing of one pool between concurrent
submissions, and cancellation of queued and running submissions, with real Ray, Optuna and
SQLite. The scheduling logic alone (who gets each worker, what a cancellation stops) is tested
on a fake pool in tests/unit/tuning/test_fair_share.py and test_cancellation.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from conftest import arena_config, cli_env
from medarena.arena import Arena
from medarena.cli import app
from medarena.exceptions import UserError
from medarena.store import Status, Store
from medarena.testing import write_boring_submission

# The boring model, whose trials sleep EPOCH_SLEEP_S per epoch, except trial 0 (training seed 0),
# which is fast. The dry run does not sleep.
EPOCH_SLEEP_S = 10
STOPPED_WITHIN_S = 30
"""A cancelled submission ends this soon after the request: before its running trials could
finish (at least 4 epochs with patience 3: 40 s), with room for a loaded machine (12 s was seen
under load against an earlier 10 s bound)."""

SLEEPY = """
    import time
    import torch
    from boring import Boring

    class Sleepy(Boring):
        def __init__(self, num_classes, input_shape, lr=0.01):
            super().__init__(num_classes, input_shape, lr=lr)
            self.seed = torch.initial_seed()

        def on_train_epoch_end(self):
            if not self.trainer.fast_dev_run and self.seed != 0:
                time.sleep({sleep})
"""


def _sleepy(folder: Path) -> Path:
    """The boring submission, searched over ``lr``, sleeping as SLEEPY says."""
    variant = SLEEPY.format(sleep=EPOCH_SLEEP_S)
    return write_boring_submission(folder, name="sleepy", variant=variant, entry_class="Sleepy")


@pytest.mark.slow
@pytest.mark.ray
def test_two_queued_submissions_share_the_workers_and_their_states_show_in_the_store(
    arena: Arena,
    copy_baseline,  # type: ignore[no-untyped-def]
) -> None:
    folder = copy_baseline("logistic-regression")
    big = arena.enqueue(folder, "tiny-ct", trials=10, team="big")
    small = arena.enqueue(folder, "tiny-ct", trials=2, team="small")
    queue = arena.store.queue()
    assert [(e["submission_id"], e["status"], e["place"]) for e in queue] == [
        (big, Status.QUEUED, 1),
        (small, Status.QUEUED, 2),
    ]
    assert queue[0]["done"] == 0 and queue[0]["total"] == 10 and queue[0]["team"] == "big"
    assert arena.store.queued()[0].mlflow_run_id == ""  # nothing ran yet

    finished: list[int] = []  # the submission of each trial, in the order they were recorded
    statuses: list[str] = []  # the recording submission's status in the store at that time
    snapshots: list[list[dict[str, Any]]] = []
    events: list[tuple[int, str]] = []

    def on_trial(submission_id: int, record: object, progress: object) -> None:
        finished.append(submission_id)
        statuses.append(arena.store.progress(submission_id)["status"])
        if len(finished) == 1:
            snapshots.append(arena.store.queue())

    ended = arena.work(
        exit_when_idle=True,
        poll_s=0.2,
        on_trial=on_trial,
        on_event=lambda sid, status, detail: events.append((sid, status)),
    )

    assert ended == 2
    assert set(statuses) == {Status.RUNNING}
    (snapshot,) = snapshots
    assert [(e["submission_id"], e["status"]) for e in snapshot] == [
        (big, Status.RUNNING),
        (small, Status.RUNNING),
    ]
    assert sum(e["done"] for e in snapshot) == 1
    for submission_id in (big, small):
        progress = arena.store.progress(submission_id)
        assert progress["status"] == Status.SCORED, progress
    assert arena.store.queue() == []
    for submission_id in (big, small):  # each started, then was scored, once
        mine = [status for sid, status in events if sid == submission_id]
        assert mine == [Status.RUNNING, Status.SCORED], events

    # Fair sharing: the small sweep ran beside the big one instead of waiting for all of its ten
    # trials (first come, first served would record ten "big" trials first).
    assert finished.count(small) == 2 and finished.count(big) == 10
    last_small = len(finished) - 1 - finished[::-1].index(small)
    assert finished[:last_small].count(big) <= 4, finished

    # Sharing changes when trials run, not what they compute: both sweeps drew the same
    # configurations for slots 0 and 1 (same task seed), trained them to the same values, and
    # the small one's score equals a solo run's.
    trials = {sid: arena.store.trials(sid) for sid in (big, small)}
    assert [(t.params, t.value) for t in trials[small]] == [
        (t.params, t.value) for t in trials[big][:2]
    ]
    solo = arena.submit(folder, "tiny-ct", trials=2, team="solo")
    board = arena.leaderboard("tiny-ct").set_index("team")
    assert board.loc["small", "auc"] == solo.scores["auc"].value
    assert set(board.index) == {"big", "small", "solo"}


@pytest.mark.slow
@pytest.mark.ray
def test_cancelling_a_queued_and_a_running_submission(
    arena: Arena,
    copy_baseline,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    waiting = arena.enqueue(copy_baseline("logistic-regression"), "tiny-ct", trials=2)
    folder = _sleepy(tmp_path / "sleepy")
    sleepy = arena.enqueue(folder, "tiny-ct", trials=6, team="sleepy")

    # A queued submission is cancelled at once and never runs.
    assert arena.cancel(waiting) == Status.CANCELLED
    with pytest.raises(UserError, match="already cancelled"):
        arena.cancel(waiting)
    with pytest.raises(UserError, match="no submission 99"):
        arena.cancel(99)

    # A running one is asked to stop after its first trial (trial 0 is fast; 1 and 2, already
    # running, would need at least 40 s each).
    asked: list[float] = []
    events: list[tuple[int, str]] = []

    def on_trial(submission_id: int, record: Any, progress: object) -> None:
        if not asked:
            assert record.number == 0
            asked.append(time.monotonic())
            assert arena.cancel(submission_id) == Status.CANCELLING
            assert arena.store.progress(submission_id)["status"] == Status.CANCELLING

    ended = arena.work(
        exit_when_idle=True,
        poll_s=0.2,
        on_trial=on_trial,
        on_event=lambda sid, status, detail: events.append((sid, status)),
    )
    stopped_after = time.monotonic() - asked[0]

    assert ended == 1
    assert events == [(sleepy, Status.RUNNING), (sleepy, Status.CANCELLED)]
    assert stopped_after < STOPPED_WITHIN_S, stopped_after  # the running trials did not finish
    row = arena.store.submission(sleepy)
    assert row is not None and row.status == Status.CANCELLED and row.finished_at is not None
    assert [(t.number, t.state) for t in arena.store.trials(sleepy)] == [(0, "complete")]
    # Only trial 0 finished training: the others' sandboxes were killed (MLflow logs every
    # finished training before the study hears of it).
    mlflow_db = sqlite3.connect(arena.config.tracking_uri.removeprefix("sqlite:///"))
    assert mlflow_db.execute("select value from tags where key = 'trial'").fetchall() == [("0",)]
    assert arena.leaderboard("tiny-ct").empty  # no score, no leaderboard row
    assert arena.store.progress(sleepy)["done"] == 1

    study = optuna.load_study(study_name=row.study_name, storage=arena.config.study_url)
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    assert states[0] == "COMPLETE" and {states[1], states[2]} == {"FAIL"}

    never = arena.store.submission(waiting)
    assert never is not None and never.status == Status.CANCELLED
    assert never.mlflow_run_id == "" and arena.store.trials(waiting) == []

    # `medarena cancel` stops a submission run in the foreground (`medarena submit`) too.
    def cancel_foreground(record: Any, progress: object) -> None:
        row = arena.store.queue()[0]
        assert row["status"] == Status.RUNNING and row["submission"] == "sleepy"
        arena.cancel(row["submission_id"])

    start = time.monotonic()
    with pytest.raises(UserError, match="was cancelled; its finished trials are kept"):
        arena.submit(folder, "tiny-ct", trials=3, on_trial=cancel_foreground)
    assert time.monotonic() - start < STOPPED_WITHIN_S
    (foreground,) = (r for r in arena.store.submissions(row.task_id) if r.id > sleepy)
    assert foreground.status == Status.CANCELLED
    assert [t.number for t in arena.store.trials(foreground.id)] == [0]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])  # Ctrl-C; SIGTERM under Ray
def test_a_stopped_queue_worker_hands_its_submission_back_and_the_next_one_finishes_it(
    stop: type[BaseException],
    ray_cluster: str,
    catalogue: Path,
    copy_baseline,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    config = arena_config(catalogue, tmp_path / "state")
    first = Arena(config)
    submission_id = first.enqueue(copy_baseline("logistic-regression"), "tiny-ct", trials=3)
    events: list[tuple[int, str, str]] = []
    recorded: list[int] = []

    def interrupt(submission_id: int, record: Any, progress: object) -> None:
        recorded.append(record.number)
        raise stop  # while the worker records its first trial

    try:
        with pytest.raises(stop):
            first.work(
                exit_when_idle=True,
                poll_s=0.2,
                on_trial=interrupt,
                on_event=lambda sid, status, detail: events.append((sid, status, detail)),
            )
    finally:
        first.close(stop_cluster=False)
    assert events[-1][:2] == (submission_id, Status.QUEUED), events
    assert "the next worker continues it" in events[-1][2]
    progress = first.store.progress(submission_id)
    assert progress["status"] == Status.QUEUED and progress["done"] == 1
    (before,) = first.store.trials(submission_id)

    second = Arena(config)
    try:
        assert second.work(exit_when_idle=True, poll_s=0.2) == 1
    finally:
        second.close(stop_cluster=False)
    progress = second.store.progress(submission_id)
    assert progress["status"] == Status.SCORED and progress["done"] == 3
    trials = second.store.trials(submission_id)
    assert sorted(t.number for t in trials) == [0, 1, 2]
    # The trial recorded before the stop was kept, not trained again.
    (kept,) = (t for t in trials if t.number == recorded[0] == before.number)
    assert (kept.id, kept.value, kept.fit_seconds) == (before.id, before.value, before.fit_seconds)
    assert len(second.leaderboard("tiny-ct")) == 1


def test_queue_states_and_transitions_in_the_store(db_url: str) -> None:
    store = Store(db_url)
    task_id = store.ensure_task(
        name="t", version=1, kind="classification", title="T", split_hash="a" * 64, primary="auc"
    )
    kept: list[int] = []
    ids = []
    for i in range(3):
        new_id = store.create_submission(
            task_id=task_id, name=f"s{i}", team="x", sha256="f" * 64, n_trials=3, seed=0,
            split_hash="a" * 64, study_name="", mlflow_run_id="", status=Status.QUEUED,
            before_commit=kept.append,
        )  # fmt: skip
        ids.append(new_id)
    assert kept == ids
    assert [r.id for r in store.queued()] == ids
    assert store.claim(ids[0]) and not store.claim(ids[0])  # one worker gets it
    assert store.request_cancel(ids[1]) == Status.CANCELLED
    assert not store.claim(ids[1])
    assert store.request_cancel(ids[0]) == Status.CANCELLING
    assert store.cancel_requested(ids[0]) and not store.cancel_requested(ids[2])
    assert store.cancelling() == {ids[0]}
    queue = store.queue()
    assert [(e["submission_id"], e["status"], e["place"]) for e in queue] == [
        (ids[0], Status.CANCELLING, None),
        (ids[2], Status.QUEUED, 1),
    ]
    store.finish_submission(ids[0], status=Status.CANCELLED)
    assert store.request_cancel(ids[0]) == Status.CANCELLED and store.cancelling() == set()
    with pytest.raises(KeyError):
        store.request_cancel(12345)


def test_running_submissions_whose_driver_went_silent_go_back_to_the_queue(db_url: str) -> None:
    store = Store(db_url)
    task_id = store.ensure_task(
        name="t", version=1, kind="classification", title="T", split_hash="a" * 64, primary="auc"
    )

    def submission(status: str) -> int:
        return store.create_submission(
            task_id=task_id, name=status, team="x", sha256="f" * 64, n_trials=3, seed=0,
            split_hash="a" * 64, study_name="", mlflow_run_id="", status=status,
        )  # fmt: skip

    foreground, claimed, mine, finished = (submission(s) for s in ("running",) + ("queued",) * 3)
    for queued in (claimed, mine, finished):
        assert store.claim(queued)
    store.finish_submission(finished, status=Status.SCORED)
    assert store.requeue_stale(60) == []  # every driver stamped its submission just now
    time.sleep(0.3)
    store.beat([foreground, finished])  # foreground's driver is alive; finished is left alone
    assert store.requeue_stale(0.2, exclude=[mine]) == [claimed]
    assert store.submission(claimed).status == Status.QUEUED  # type: ignore[union-attr]
    assert store.submission(finished).status == Status.SCORED  # type: ignore[union-attr]
    assert [r.id for r in store.queued()] == [claimed]
    assert store.requeue_stale(0.2, exclude=[mine]) == []  # not twice
    assert store.requeue_stale(0.2) == [mine]


def test_queue_and_cancel_from_the_command_line(
    catalogue: Path,
    tmp_path: Path,
    copy_baseline,  # type: ignore[no-untyped-def]
) -> None:
    runner = CliRunner()
    env = {"MEDARENA_HOME": str(tmp_path / "home"), "MEDARENA_TASKS_DIR": str(catalogue)}
    folder = str(copy_baseline("logistic-regression"))
    ids = []
    for team in ("a", "b"):
        result = runner.invoke(
            app,
            ["submit", folder, "--task", "tiny-ct", "--queue", "--team", team, "--format", "json"],
            env=env,
        )
        assert result.exit_code == 0, result.output
        ids.append(json.loads(result.output)["submission_id"])
    listed = runner.invoke(app, ["queue", "--format", "json"], env=env)
    assert [(e["team"], e["status"], e["place"]) for e in json.loads(listed.output)] == [
        ("a", "queued", 1),
        ("b", "queued", 2),
    ]
    table = runner.invoke(app, ["queue"], env=env)
    assert table.exit_code == 0 and "queued (#2)" in table.output
    assert (tmp_path / "home" / "artifacts" / str(ids[0]) / "submission" / "model.py").exists()

    cancelled = runner.invoke(app, ["cancel", str(ids[0])], env=env)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    again = runner.invoke(app, ["cancel", str(ids[0])], env=env)
    assert again.exit_code == 2 and "already cancelled" in again.output
    listed = runner.invoke(app, ["queue", "--format", "json"], env=env)
    assert [e["submission_id"] for e in json.loads(listed.output)] == [ids[1]]


@pytest.mark.slow
@pytest.mark.ray
def test_medarena_worker_runs_the_queue_and_exits_when_idle(
    ray_cluster: str,
    catalogue: Path,
    tmp_path: Path,
    copy_baseline,  # type: ignore[no-untyped-def]
) -> None:
    runner = CliRunner()
    full_env = cli_env(tmp_path / "home", catalogue, ray_address=ray_cluster)
    env = {"MEDARENA_HOME": str(tmp_path / "home"), "MEDARENA_TASKS_DIR": str(catalogue)}
    folder = str(copy_baseline("logistic-regression"))
    queued = runner.invoke(
        app, ["submit", folder, "--task", "tiny-ct", "--queue", "--trials", "2"], env=env
    )
    assert queued.exit_code == 0 and "submission 1 queued" in queued.output, queued.output

    worker = subprocess.run(
        [sys.executable, "-m", "medarena", "worker", "--exit-when-idle", "--poll", "0.2"],
        capture_output=True, text=True, env=full_env, timeout=300,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert "submission 1: running" in worker.stderr and "submission 1: scored" in worker.stderr
    assert "submissions finished: 1" in worker.stdout
    progress = runner.invoke(app, ["progress", "1", "--format", "json"], env=env)
    state = json.loads(progress.output)
    assert state["status"] == "scored" and state["done"] == 2


@pytest.mark.slow
@pytest.mark.ray
def test_a_platform_error_is_shown_by_its_kind_and_logged_in_full(
    ray_cluster: str,
    catalogue: Path,
    tmp_path: Path,
    copy_baseline,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The store and the pages show a platform error's kind only (its text may name hosts and
    database URLs); the operator's log and MLflow get it whole."""
    from dataclasses import replace

    import mlflow

    secret = "postgresql+psycopg2://medarena:s3cret-pw@127.0.0.1:1/studies"
    config = replace(arena_config(catalogue, tmp_path / "state"), study_url=secret)
    arena = Arena(config)
    try:
        submission_id = arena.enqueue(copy_baseline("logistic-regression"), "tiny-ct", trials=1)
        with caplog.at_level("ERROR", logger="medarena"):
            assert arena.work(exit_when_idle=True, poll_s=0.1) == 1
        row = arena.store.submission(submission_id)
        assert row is not None and row.status == Status.FAILED
        assert row.error.startswith("the platform failed while running this submission")
        assert "PlatformError" in row.error and "s3cret" not in row.error
        assert "127.0.0.1:1" not in row.error
        assert "cannot open the study" in caplog.text and "Traceback" in caplog.text
        assert "s3cret" not in caplog.text  # the operator's log holds no password either
        run = mlflow.MlflowClient(config.tracking_uri).get_run(row.mlflow_run_id)
        assert "cannot open the study" in run.data.tags["error"]
    finally:
        arena.close(stop_cluster=False)
