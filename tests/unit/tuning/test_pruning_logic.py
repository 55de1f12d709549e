"""The median pruner's logic: the board, the hook the workers call, and sweeps on a fake pool
whose trials report scripted curves epoch by epoch (interleaved in virtual time, as workers
would). The end-to-end version (Ray workers reporting to a board actor from inside their
supervisors) is tests/integration/test_pruning.py."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from sweeping import boring, durable, states, studies_url, study, task

from medarena.execution import LocalService, TrialJob
from medarena.execution.supervisor import TrialOutcome
from medarena.testing import FakePool, cheap_outcome, trial_outcome
from medarena.tuning import SweepResult, TrialRecord, run_sweep
from medarena.tuning.jobs import base_config
from medarena.tuning.pruning import PruningBoard, PruningHook
from medarena.tuning.records import SweepProgress

GOOD = [0.6 + 0.05 * epoch for epoch in range(8)]
BAD = [0.3 + 0.01 * epoch for epoch in range(8)]  # below every good epoch: ranked backwards


def _quality(job: TrialJob) -> TrialOutcome:
    """Good configurations learn; bad ones stay below 0.5, as a model ranking backwards."""
    if job.dry_run or job.weights is not None:
        return cheap_outcome(job)
    return trial_outcome(job, GOOD if job.config.params["quality"] == "good" else BAD)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """This test's study database."""
    yield from studies_url(tmp_path)


def _run(pool: FakePool, url: str, name: str, n_trials: int, **options: object) -> SweepResult:
    bundle, spec = boring(quality=True), task(pruner=True)
    return run_sweep(
        pool, bundle, spec, storage_url=url, study_name=name, n_trials=n_trials,
        config=base_config(bundle, spec, use_gpu=False), **options,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_median_pruner_stops_weak_trials(url: str) -> None:
    pool = FakePool(2, _quality)
    result = _run(pool, url, "pruned", 8)

    assert len(result.trials) == 8
    summary = [(t.number, t.params["quality"], t.state, t.outcome.epochs) for t in result.trials]
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned and all(t.params["quality"] == "bad" for t in pruned), summary
    assert all(t.outcome.epochs < 8 for t in pruned)
    # Nothing is pruned before two trials completed; after that, every bad trial is pruned at
    # its first epoch after the warm-up.
    first_two = sorted(e.time for e in pool.events if e.what == "finish" and e.job.key >= 0)[1]
    late_bad = [
        t for t in result.trials if t.params["quality"] == "bad" and t.number >= 2
    ]  # started once two trials had completed (trials 0 and 1 take the two workers first)
    assert late_bad and all(t.state == "pruned" and t.outcome.epochs == 2 for t in late_bad)
    assert all(e.time > first_two for e in pool.events if e.what == "pruned")
    # A pruned trial keeps its best epoch so far, and its shortened curve.
    for trial in pruned:
        assert len(trial.outcome.history) == 2 and trial.value == max(BAD[:2])
    assert result.best.params == {"quality": "good"}

    # The study holds the same states and every trial's curve, epoch by epoch.
    trials = study(url, "pruned")
    assert [t.number for t in trials if t.state.name == "PRUNED"] == [t.number for t in pruned]
    for frozen, trial in zip(trials, result.trials, strict=True):
        assert sorted(frozen.intermediate_values) == list(range(trial.outcome.epochs))


def test_a_resumed_sweep_feeds_its_board_the_trials_completed_before(url: str) -> None:
    recorded: dict[int, TrialRecord] = {}

    def on_trial(record: TrialRecord, progress: SweepProgress) -> None:
        recorded[record.number] = durable(record)

    def driver_dies() -> bool:
        if len(recorded) == 2:
            raise KeyboardInterrupt  # Ctrl-C between two steps: nothing is cancelled
        return False

    with pytest.raises(KeyboardInterrupt):
        _run(FakePool(2, _quality), url, "pruned-resumed", 8, on_trial=on_trial,
             should_stop=driver_dies, poll_s=0.0)  # fmt: skip
    assert states(url, "pruned-resumed") == [
        (0, "COMPLETE"), (1, "COMPLETE"), (2, "RUNNING"), (3, "RUNNING")
    ]  # fmt: skip

    second = FakePool(2, _quality)
    result = _run(second, url, "pruned-resumed", 8, finished=dict(recorded))
    # Trial 3 (bad) ran again, first, and was pruned after its warm-up epoch, before any trial
    # completed under this driver: the board knew the two completed by the first.
    (trial,) = (t for t in result.trials if t.number == 3)
    assert trial.params == {"quality": "bad"} and trial.state == "pruned"
    assert trial.outcome.epochs == 2
    (pruned,) = (e for e in second.events if e.job.key == 3 and e.what == "pruned")
    assert pruned.time < min(e.time for e in second.events if e.what == "finish")


def test_a_new_attempt_of_a_trial_replaces_the_earlier_on_the_board() -> None:
    board = PruningBoard("maximize", n_startup_trials=0, n_warmup_steps=0)
    assert not board.report(0, 1, 0, 0.5)
    first = board.running[0][1]
    assert not board.report(0, 2, 0, 0.6)  # the worker died; attempt 2 starts over
    assert board.running[0][0] == 2
    frozen = board.study.get_trials(deepcopy=False)
    assert [t.state for t in frozen] == [
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.RUNNING,
    ]
    assert frozen[0].number == first.number
    board.finish(0, 0.6)
    board.finish(0, 0.6)  # twice: ignored
    assert [t.state.name for t in board.study.get_trials()] == ["FAIL", "COMPLETE"]


def test_the_board_prunes_below_the_median_of_completed_trials_after_the_warm_up() -> None:
    board = PruningBoard("maximize", n_startup_trials=2, n_warmup_steps=1)
    board.add_completed(0.9, {0: 0.5, 1: 0.8})
    assert not board.report(5, 1, 1, 0.1)  # one completed trial: still starting up
    board.finish(5, None)
    board.add_completed(0.8, {0: 0.4, 1: 0.7})
    assert not board.report(6, 1, 0, 0.1)  # the warm-up epoch
    assert board.report(6, 1, 1, 0.1)  # below the median (0.75) of epoch 1
    assert not board.report(7, 1, 1, 0.76)
    minimizing = PruningBoard("minimize", n_startup_trials=1, n_warmup_steps=0)
    minimizing.add_completed(1.0, {0: 1.0})
    assert minimizing.report(0, 1, 0, 2.0) and not minimizing.report(1, 1, 0, 0.5)


def test_the_hook_reports_the_primary_metric_and_skips_nan() -> None:
    board = LocalService(PruningBoard, "maximize", 1, 0)
    board.call(PruningBoard.add_completed, 0.9, {0: 0.9})
    hook = PruningHook(board, number=3, attempt=1, metric="auc")
    assert not hook(0, {"epoch": 0.0, "val_auc": math.nan, "val_accuracy": 0.1})
    assert hook(0, {"epoch": 0.0, "val_auc": 0.2, "val_accuracy": 0.95})
    assert not hook(1, {"epoch": 1.0, "val_accuracy": 0.1})  # no value: nothing to compare
