"""Where no sandbox can run: refused by default, allowed only explicitly, and marked everywhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import BASELINES
from medarena.exceptions import PlatformError
from medarena.execution import TrialJob, supervisor
from medarena.sandbox import SandboxLimits, SandboxSupport
from medarena.scoring.ranking import leaderboard, leaderboard_records
from medarena.store import Store
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, load_task_data
from medarena.tuning.jobs import base_config, dry_run_job


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = SandboxSupport(False, "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(supervisor, "sandbox_support", lambda: missing)


def test_without_a_sandbox_submitted_code_is_refused(catalogue: Path, no_sandbox: None) -> None:
    data = load_task_data(TaskCatalogue(catalogue).get("tiny-ct")).worker_data()
    with pytest.raises(PlatformError, match=r"no sandbox can run.*MEDARENA_ALLOW_UNSANDBOXED"):
        supervisor.Supervisor(data, limits=SandboxLimits())


@pytest.mark.slow  # it trains
def test_allowed_unsandboxed_runs_are_marked(catalogue: Path, no_sandbox: None) -> None:
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    data = load_task_data(spec).worker_data()
    bundle = load_submission(BASELINES / "logistic-regression")
    config = replace(dry_run_job(bundle, base_config(bundle, spec, use_gpu=False)).config,
                     max_epochs=2)  # fmt: skip
    runner = supervisor.Supervisor(data, limits=SandboxLimits(), allow_unsandboxed=True)
    try:
        outcome = runner.run(TrialJob(key=0, config=config, files=bundle.files))
    finally:
        runner.close()
    assert outcome.ok, outcome.error
    assert outcome.sandboxed is False and outcome.epochs == 2


def test_the_store_and_the_board_carry_the_mark(tmp_path: Path) -> None:
    from medarena.metrics import get_metric

    store = Store(f"sqlite:///{tmp_path / 'leaderboard.db'}")
    task_id = store.ensure_task(
        name="t", version=1, kind="classification", title="t", split_hash="h", primary="auc"
    )
    for name, sandboxed in (("boxed", True), ("loose", False)):
        sid = store.create_submission(
            task_id=task_id, name=name, team=name, sha256="0" * 64, n_trials=1, seed=0,
            split_hash="h", study_name="", mlflow_run_id="",
        )  # fmt: skip
        store.finish_submission(
            sid, status="scored", scores={"auc": (0.7, 0.6, 0.8)}, sandboxed=sandboxed
        )
    board = leaderboard(store.scores_frame(task_id), metrics=[get_metric("auc")])
    marks = {row["submission"]: row["sandboxed"] for row in leaderboard_records(board, ["auc"])}
    assert marks == {"boxed": True, "loose": False}
