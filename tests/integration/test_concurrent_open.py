"""Several processes opening a new home at the same instant: each database's tables are created
once, and every process gets a working store, study and tracker (``medarena serve`` and
``medarena worker`` started together, two ``medarena submit`` on a fresh home)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.managers import SyncManager
from pathlib import Path
from threading import Barrier

import pytest

PROCESSES = 4


def _open_everything(
    leaderboard_url: str, home: str, task_yaml: str, number: int, barrier: Barrier
) -> str:
    """Open the leaderboard, a study and the MLflow store once the others are ready too."""
    from medarena.store import Store
    from medarena.tasks.spec import load_task_spec
    from medarena.tracking import Tracker
    from medarena.tuning.study import open_study

    task = load_task_spec(Path(task_yaml))
    barrier.wait()
    try:
        Store(leaderboard_url).ensure_task(
            name="t", version=1, kind="classification", title="T", split_hash="a" * 64,
            primary="auc",
        )  # fmt: skip
        open_study(task, storage_url=f"sqlite:///{home}/studies.db", study_name=f"s{number}")
        Tracker(f"sqlite:///{home}/mlflow.db", experiment="medarena/t")
    except Exception as exc:  # reported to the test, which shows every process's error
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.slow
def test_processes_opening_a_new_home_at_once_all_succeed(
    db_url: str, catalogue: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    context = multiprocessing.get_context("spawn")
    with SyncManager(ctx=context) as manager, context.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        task_yaml = str(catalogue / "tiny-ct" / "task.yaml")
        outcomes = pool.starmap(
            _open_everything,
            [(db_url, str(home), task_yaml, n, barrier) for n in range(PROCESSES)],
        )
    assert outcomes == ["ok"] * PROCESSES, outcomes

    from medarena.store import Store
    from medarena.tracking import Tracker

    assert Store(db_url).task_id("t", 1) is not None
    tracker = Tracker(f"sqlite:///{home}/mlflow.db", experiment="medarena/t")
    assert len(tracker.client.search_experiments(filter_string="name = 'medarena/t'")) == 1
