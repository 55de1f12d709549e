"""A sweep continued after its driver died, stepped by hand with made-up results (no Ray, no
training): the same trial numbers, parameters, seeds and study states as an uninterrupted run.

The same through run_sweep on a fake pool: tests/unit/tuning/test_sweep_resume.py. The slow,
end-to-end version (a real driver killed with SIGKILL) is tests/integration/test_resume.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from conftest import BASELINES
from medarena.execution import TrialJob, TrialResult
from medarena.execution.supervisor import TrialOutcome
from medarena.submissions.bundle import load_submission
from medarena.tasks.spec import load_task_spec
from medarena.tuning import Sweep, TrialRecord
from medarena.tuning.jobs import base_config

N_TRIALS = 6
WORKERS = 2


def _outcome(job: TrialJob) -> TrialOutcome:
    value = (job.key * 7919 % 13) / 13 + 0.01
    curve = [{"epoch": e, "val_auc": value * (e + 1) / 3} for e in range(3)]
    return TrialOutcome(
        ok=True,
        best_value=value,
        history=curve,
        weights=b"w%d" % job.key,
        test_predictions=[job.key],
    )


class _Driver:
    """Steps one sweep with ``WORKERS`` make-believe workers that finish in start order."""

    def __init__(self, catalogue: Path, studies: Path, finished: dict[int, TrialRecord]) -> None:
        task = load_task_spec(catalogue / "tiny-ct" / "task.yaml")
        bundle = load_submission(BASELINES / "small-cnn")
        self.config = base_config(bundle, task, use_gpu=False)
        self.recorded = finished  # what on_trial made durable, across drivers
        self.started: list[TrialJob] = []
        self.running: list[TrialJob] = []
        self.sweep = Sweep(
            bundle,
            task,
            storage_url=f"sqlite:///{studies}",
            study_name="sweep",
            n_trials=N_TRIALS,
            config=self.config,
            finished=dict(finished),
            on_trial=lambda record, _: self.recorded.__setitem__(record.number, record),
        )

    def fill(self) -> None:
        while len(self.running) < WORKERS and (job := self.sweep.want_job()) is not None:
            self.running.append(job)
            self.started.append(job)

    def finish_one(self, *, record: bool = True) -> TrialRecord | None:
        job = self.running.pop(0)
        trial = self.sweep.accept(TrialResult(job=job, outcome=_outcome(job), worker=0))
        if trial is not None and record:
            self.sweep.record(trial)
        return trial

    def run(self) -> None:
        self.fill()
        while self.running:
            self.finish_one()
            self.fill()


def _study(path: Path) -> dict[str, list[Any]]:
    """What the study holds, read through Optuna's API."""
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{path}")
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return {
        "states": [(t.number, t.state.name) for t in trials],
        "values": [(t.number, t.value) for t in trials if t.value is not None],
        "params": [(t.number, t.params) for t in trials],
        "curved": [t.number for t in trials if t.intermediate_values],
    }


@pytest.fixture
def straight(catalogue: Path, tmp_path: Path) -> tuple[_Driver, Path]:
    driver = _Driver(catalogue, tmp_path / "straight.db", {})
    driver.run()
    return driver, tmp_path / "straight.db"


def test_a_resumed_sweep_equals_an_uninterrupted_one(
    catalogue: Path, tmp_path: Path, straight: tuple[_Driver, Path]
) -> None:
    uninterrupted, straight_db = straight
    studies = tmp_path / "resumed.db"
    first = _Driver(catalogue, studies, {})
    first.fill()
    first.finish_one()
    first.fill()
    first.finish_one()
    first.fill()
    # Recorded by on_trial, then the driver died before telling the study; another trial was
    # still running on a worker.
    told_late = first.finish_one(record=False)
    assert told_late is not None
    first.recorded[told_late.number] = told_late
    (orphan,) = first.running
    assert _study(studies)["states"][orphan.key] == (orphan.key, "RUNNING")

    second = _Driver(catalogue, studies, first.recorded)
    assert second.sweep.progress.restored == 3
    second.run()

    # The orphan ran again, once, with its own number, parameters and seed.
    (again,) = [j for j in second.started if j.key == orphan.key]
    assert again.config == orphan.config and again.attempt == 1
    assert again.config.seed == second.config.seed + orphan.key
    trainings = [j.key for j in first.started + second.started if j.weights is None]
    assert sorted(trainings) == sorted([*range(N_TRIALS), orphan.key])

    resumed = second.sweep.result()
    expected = uninterrupted.sweep.result()
    assert [(t.number, t.params, t.state) for t in resumed.trials] == [
        (t.number, t.params, t.state) for t in expected.trials
    ]
    assert resumed.best.number == expected.best.number
    assert resumed.test_predictions == expected.test_predictions

    study, reference = _study(studies), _study(straight_db)
    assert study["states"] == [(n, "COMPLETE") for n in range(N_TRIALS)]
    for key in ("states", "values", "params"):
        assert study[key] == reference[key], key
    # Known difference: a trial told after a restart has no learning curve in the study (only
    # the process that asked a trial gets Optuna's handle to report to; the store and MLflow keep
    # the curve), just like one recorded before the crash and told after it.
    assert reference["curved"] == list(range(N_TRIALS))
    assert study["curved"] == sorted(set(range(N_TRIALS)) - {orphan.key, told_late.number})


def test_a_trial_left_running_is_failed_in_the_study_when_the_resumed_sweep_is_stopped(
    catalogue: Path, tmp_path: Path
) -> None:
    studies = tmp_path / "studies.db"
    first = _Driver(catalogue, studies, {})
    first.fill()
    (orphan, _) = first.running

    second = _Driver(catalogue, studies, {})
    second.fill()
    assert orphan.key in [j.key for j in second.running]
    second.sweep.stopped(second.running)
    assert _study(studies)["states"] == [(0, "FAIL"), (1, "FAIL")]
