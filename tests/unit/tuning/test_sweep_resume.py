"""A sweep whose driver died, continued by run_sweep on a fake pool: finished trials are kept and
not run again, trials in flight run again with their own number, parameters and seed, and the
result is an uninterrupted run's. tests/unit/test_sweep_restore.py steps the same by hand; the
end-to-end version (a real driver killed with SIGKILL) is tests/integration/test_resume.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sweeping import boring, durable, states, studies_url, study, task

from medarena.testing import FakePool
from medarena.tuning import SweepResult, TrialRecord, run_sweep
from medarena.tuning.jobs import base_config
from medarena.tuning.records import SweepProgress

N_TRIALS = 6


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """This test's study database."""
    yield from studies_url(tmp_path)


def _run(pool: FakePool, url: str, name: str, **options: Any) -> SweepResult:
    config = base_config(boring(), task(), use_gpu=False)
    return run_sweep(
        pool, boring(), task(), storage_url=url, study_name=name, n_trials=N_TRIALS,
        config=config, **options,
    )  # fmt: skip


def test_a_sweep_whose_driver_died_resumes_without_repeating_trials(url: str) -> None:
    name = "resumed"
    recorded: dict[int, TrialRecord] = {}  # what on_trial made durable, across drivers

    def die_at_the_third(record: TrialRecord, progress: SweepProgress) -> None:
        recorded[record.number] = durable(record)
        if len(recorded) == 3:
            raise KeyboardInterrupt  # recorded, but the driver dies before telling the study

    first = FakePool(2)
    with pytest.raises(KeyboardInterrupt):
        _run(first, url, name, on_trial=die_at_the_third)
    assert sorted(recorded) == [0, 1, 2]
    assert states(url, name) == [
        (0, "COMPLETE"), (1, "COMPLETE"), (2, "RUNNING"), (3, "RUNNING"), (4, "RUNNING")
    ]  # fmt: skip

    progress: list[SweepProgress] = []

    def record(record: TrialRecord, now: SweepProgress) -> None:
        recorded[record.number] = durable(record)
        progress.append(now)

    second = FakePool(2)
    resumed = _run(second, url, name, finished=dict(recorded), on_trial=record)

    # Trials 3 and 4 were in flight: they ran again, once, as they were; 0-2 did not run again.
    trainings = [job for job in second.started if job.weights is None]
    assert [job.key for job in trainings] == [3, 4, 5]
    for again in trainings[:2]:
        (before,) = (job for job in first.started if job.key == again.key)
        assert again.config == before.config and again.attempt == 1
    assert progress[0].restored == 3 and progress[-1].done == N_TRIALS

    straight = _run(FakePool(2), url, "straight")
    assert [(t.number, t.params, t.value, t.state) for t in resumed.trials] == [
        (t.number, t.params, t.value, t.state) for t in straight.trials
    ]
    assert resumed.best.number == straight.best.number
    assert resumed.test_predictions == straight.test_predictions

    trials, reference = study(url, name), study(url, "straight")
    assert [t.state.name for t in trials] == ["COMPLETE"] * N_TRIALS
    assert [(t.params, t.value) for t in trials] == [(t.params, t.value) for t in reference]
    # Known difference: trials told by number after the restart have no curve in the study.
    assert [bool(t.intermediate_values) for t in trials] == [n not in (2, 3, 4) for n in range(6)]
