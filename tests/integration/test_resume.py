"""Determinism and resumption: the same seed gives the same sweep, and a sweep whose driver was
killed continues from its stored study without losing or repeating finished trials."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from conftest import TINY_TASK, arena_config, cli_env
from medarena.arena import Arena, SubmissionResult
from medarena.testing import write_boring_submission

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# The boring model, sleeping a little per epoch so that a sweep can be caught in the middle.
# (Every finished training is logged to MLflow before the study hears of it, so MLflow's nested
# runs count the trainings: the sandboxed model cannot leave marks outside.)
COUNTING = """
    import time
    from boring import Boring

    class Counting(Boring):
        def __init__(self, num_classes, input_shape, lr=0.01, l2=1e-4):
            super().__init__(num_classes, input_shape, lr=lr)
            self.l2 = l2

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss + self.l2 * self.linear.weight.pow(2).sum()

        def on_train_epoch_end(self):
            if not self.trainer.fast_dev_run:
                time.sleep({sleep})
"""

SEARCH_SPACE = {
    "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
    "l2": {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True},
}


TRIALS = 4


class Setting:
    """The module's catalogue, its counting submission (sleeping 0.3 s per epoch, so that a
    command can be caught between trials) and one uninterrupted sweep of it, which every test
    compares its own run with."""

    def __init__(self, root: Path) -> None:
        self.catalogue = root / "tasks"
        (self.catalogue / "tiny-ct").mkdir(parents=True)
        (self.catalogue / "tiny-ct" / "task.yaml").write_text(TINY_TASK)
        self.submission = write_boring_submission(
            root / "counting", name="counting", variant=COUNTING.format(sleep=0.3),
            entry_class="Counting", search_space=SEARCH_SPACE,
        )  # fmt: skip
        self.straight: SubmissionResult
        self.straight_arena: Arena


@pytest.fixture(scope="module")
def setting(ray_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setting]:
    setting = Setting(tmp_path_factory.mktemp("resume"))
    arena = Arena(arena_config(setting.catalogue, setting.catalogue.parent / "straight"))
    try:
        setting.straight = arena.submit(setting.submission, "tiny-ct", trials=TRIALS)
    finally:
        arena.close(stop_cluster=False)
    setting.straight_arena = arena
    yield setting


def _trainings(home: Path, *, live: bool = False) -> dict[int, int]:
    """How many finished trainings MLflow logged for each trial number (``live``: only the runs
    not deleted, which MLflow shows)."""
    query = "select value from tags join runs using (run_uuid) where key = 'trial'"
    if live:
        query += " and lifecycle_stage = 'active'"
    with sqlite3.connect(home / "mlflow.db") as conn:
        rows = conn.execute(query).fetchall()
    counts: dict[int, int] = {}
    for (number,) in rows:
        counts[int(number)] = counts.get(int(number), 0) + 1
    return counts


def _log_unstored_trial(home: Path, *, number: int) -> None:
    """What a driver killed between logging trial ``number`` to MLflow and storing it leaves
    (a race the kill in these tests hits only sometimes)."""
    from medarena.tracking import Tracker

    with sqlite3.connect(home / "leaderboard.db") as conn:
        (parent,) = conn.execute("select mlflow_run_id from submissions").fetchone()
    tracker = Tracker(f"sqlite:///{home / 'mlflow.db'}", experiment="medarena/tiny-ct")
    tracker.log_trial(
        parent, number=number, params={}, history=[], summary={}, tags={}, failed=False
    )


def _assert_recorded_trials_were_not_trained_again(
    home: Path, before: list[tuple[int, str]]
) -> None:
    """Trials recorded before a kill trained once. A trial in flight at the kill trained
    again; if the killed driver had logged it to MLflow but not yet stored it, that run was
    discarded: MLflow shows one run per trial."""
    trainings = _trainings(home)
    assert {n: trainings[n] for n, _ in before} == {n: 1 for n, _ in before}
    assert _trainings(home, live=True) == {n: 1 for n in range(TRIALS)}


def test_the_same_seed_gives_the_same_configurations_and_scores(
    setting: Setting, tmp_path: Path
) -> None:
    arena = Arena(arena_config(setting.catalogue, tmp_path / "again"))
    try:
        b = arena.submit(setting.submission, "tiny-ct", trials=TRIALS)
    finally:
        arena.close(stop_cluster=False)
    arena_a, a = setting.straight_arena, setting.straight
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert len({json.dumps(t.params, sort_keys=True) for t in a.trials}) == TRIALS
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    assert {k: v.as_tuple() for k, v in a.scores.items()} == {
        k: v.as_tuple() for k, v in b.scores.items()
    }
    assert a.best_params == b.best_params

    # The seed is recorded in the store and in MLflow.
    row = arena_a.store.submission(a.submission_id)
    assert row is not None and row.seed == 0 and row.study_name.endswith("submission-1")
    import mlflow

    run = mlflow.MlflowClient(arena_a.config.tracking_uri).get_run(a.mlflow_run_id)
    assert run.data.params["seed"] == "0"


def _medarena(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [sys.executable, "-m", "medarena", *args],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def _recorded(db: Path) -> tuple[str, list[tuple[int, str]]]:
    if not db.exists():
        return "", []
    with sqlite3.connect(db) as conn:
        try:
            status = conn.execute("select status from submissions").fetchone()
            trials = conn.execute("select number, params from trials order by number").fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return "", []
    return (status[0] if status else ""), trials


def _kill_after_its_first_trial(process: subprocess.Popen[str], db: Path) -> list[tuple[int, str]]:
    """SIGKILL ``process`` once it recorded a trial, with no chance to clean up (Ray then stops
    its workers); returns the trials recorded by then, the submission still running."""
    deadline = time.monotonic() + 180
    try:
        while not _recorded(db)[1]:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    status, before = _recorded(db)
    assert status == "running" and 1 <= len(before) < 4, before
    return before


def test_a_sweep_whose_driver_was_killed_resumes_without_repeating_trials(
    setting: Setting, ray_cluster: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = cli_env(home, setting.catalogue, ray_address=ray_cluster)
    driver = _medarena(
        "submit", str(setting.submission), "--task", "tiny-ct", "--trials", str(TRIALS),
        "--format", "json", env=env, start_new_session=True,
    )  # fmt: skip
    db = home / "leaderboard.db"
    before = _kill_after_its_first_trial(driver, db)
    _log_unstored_trial(home, number=max(n for n, _ in before) + 1)

    resumed = _medarena("resume", "1", "--format", "json", env=env)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    result = json.loads(stdout)
    assert result["trials"] == 4
    _, after = _recorded(db)
    assert [n for n, _ in after] == [0, 1, 2, 3]
    # Whichever trials finished before the kill (not necessarily the lowest numbers: trials run
    # in parallel) keep their numbers and parameters.
    assert [(n, p) for n, p in after if n in dict(before)] == before

    _assert_recorded_trials_were_not_trained_again(home, before)
    studies = f"sqlite:///{home / 'studies.db'}"
    (name,) = optuna.get_all_study_names(storage=studies)
    trials = optuna.load_study(study_name=name, storage=studies).get_trials(deepcopy=False)
    assert sorted((t.number, t.state.name) for t in trials) == [(n, "COMPLETE") for n in range(4)]

    # The same result as an uninterrupted run of the same submission.
    straight = setting.straight
    assert result["best_params"] == straight.best_params
    assert result["metrics"]["auc"]["value"] == straight.scores["auc"].value
    assert result["metrics"]["auc"]["ci"] == [straight.scores["auc"].ci_low,
                                              straight.scores["auc"].ci_high]  # fmt: skip


def test_a_queue_worker_takes_over_the_submission_of_a_worker_that_was_killed(
    setting: Setting, ray_cluster: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = cli_env(home, setting.catalogue, ray_address=ray_cluster)
    queued = _medarena(
        "submit", str(setting.submission), "--task", "tiny-ct", "--trials", str(TRIALS),
        "--queue", env=env,
    )  # fmt: skip
    assert queued.wait(timeout=300) == 0, queued.communicate()
    worker = _medarena("worker", env=env, start_new_session=True)
    db = home / "leaderboard.db"
    before = _kill_after_its_first_trial(worker, db)

    time.sleep(3)  # longer than the next worker's --stale-after since the last heartbeat
    successor = _medarena("worker", "--exit-when-idle", "--stale-after", "2", env=env)
    stdout, stderr = successor.communicate(timeout=300)
    assert successor.returncode == 0, stderr
    assert "its driver stopped answering" in stderr and "scored" in stderr, stderr
    assert "submissions finished: 1" in stdout
    status, after = _recorded(db)
    assert status == "scored" and [n for n, _ in after] == [0, 1, 2, 3]
    assert [(n, p) for n, p in after if n in dict(before)] == before
    _assert_recorded_trials_were_not_trained_again(home, before)
