"""The fake pool itself: virtual time, scripted outcomes, epochs replayed to the pruning hook,
dead and hanging workers. (That it keeps the pool's contract is
tests/integration/test_pool_conformance.py, run on the fake and on Ray.)"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from medarena.exceptions import PlatformError
from medarena.execution import LocalService, TrialJob
from medarena.execution.supervisor import PLATFORM_FAILURE, TrialConfig, TrialOutcome
from medarena.testing import (
    FakePool,
    FakePredictions,
    Hang,
    WorkerDied,
    cheap_outcome,
    fake_weights,
    trial_outcome,
)

CONFIG = TrialConfig(
    submission_sha256="0" * 64, entry_file="boring.py", entry_class="Boring", params={"lr": 0.01},
    metrics=("auc", "accuracy"), max_epochs=8, patience=3, batch_size=32, seed=0,
)  # fmt: skip


def _job(key: int, **changes: object) -> TrialJob:
    return TrialJob(key=key, config=replace(CONFIG, seed=key), files={}, **changes)  # type: ignore[arg-type]


def test_results_come_back_in_the_order_the_jobs_would_end() -> None:
    curves = {0: [0.5] * 4, 1: [0.5], 2: [0.5] * 2}
    pool = FakePool(2, lambda job: trial_outcome(job, curves[job.key]))
    pool.submit(_job(0))
    pool.submit(_job(1))
    assert (pool.idle, pool.running) == (0, 2)
    first = pool.next_result()
    assert first is not None and first.job.key == 1 and pool.clock == 1.0
    pool.submit(_job(2))  # starts at 1, ends at 3: before job 0 (at 4)
    keys = [pool.next_result().job.key for _ in range(2)]  # type: ignore[union-attr]
    assert keys == [2, 0] and pool.clock == 4.0
    assert [(e.time, e.what, e.job.key) for e in pool.events] == [
        (0.0, "start", 0), (0.0, "start", 1), (1.0, "finish", 1), (1.0, "start", 2),
        (3.0, "finish", 2), (4.0, "finish", 0),
    ]  # fmt: skip
    assert [r.job.key for r in pool.results] == [1, 2, 0] and pool.idle == 2


def test_ties_end_in_the_order_the_jobs_were_submitted() -> None:
    pool = FakePool(3)
    jobs = [_job(key) for key in (5, 3, 4)]
    for job in jobs:
        pool.submit(job)
    assert [pool.next_result().job for _ in jobs] == jobs  # type: ignore[union-attr]


def test_trial_outcome_takes_the_best_epoch_by_the_metrics_direction() -> None:
    outcome = trial_outcome(_job(3), [0.5, 0.7, 0.7, 0.6], seconds_per_epoch=2.0)
    assert (outcome.best_epoch, outcome.best_value, outcome.epochs) == (1, 0.7, 4)
    assert outcome.fit_seconds == 8.0 and outcome.weights == fake_weights(_job(3))
    assert outcome.history[1] == {"epoch": 1.0, "train_loss": 0.5, "val_auc": 0.7,
                                  "val_accuracy": 0.7}  # fmt: skip
    lower = replace(_job(3), config=replace(CONFIG, metrics=("hd95",)))
    assert trial_outcome(lower, [9.0, 4.0, 6.0]).best_epoch == 1
    with pytest.raises(ValueError, match="at least one epoch"):
        trial_outcome(_job(0), [])


def test_cheap_outcomes_depend_only_on_parameters_and_seed() -> None:
    a, b = cheap_outcome(_job(1)), cheap_outcome(_job(1, attempt=2))
    assert a.best_value == b.best_value and 0.55 <= a.best_value <= 0.95
    assert cheap_outcome(_job(2)).best_value != a.best_value
    assert a.epochs == 3 and a.best_epoch == 2 and a.ok
    assert cheap_outcome(_job(1, dry_run=True)) == TrialOutcome(ok=True)
    predicted = cheap_outcome(_job(1, weights=b"w"))
    assert predicted.test_predictions == FakePredictions(b"w")


def test_epochs_are_replayed_to_the_hook_interleaved_and_a_true_answer_prunes() -> None:
    reports: list[tuple[int, int, float]] = []

    def hook_of(key: int, prune_at: int | None) -> object:
        def hook(epoch: int, row: dict[str, float]) -> bool:
            reports.append((key, epoch, row["val_auc"]))
            return epoch == prune_at

        return hook

    curves = {0: [0.1, 0.2, 0.3, 0.4], 1: [0.6, 0.9, 0.8, 0.7]}
    pool = FakePool(2, lambda job: trial_outcome(job, curves[job.key], seconds_per_epoch=1.0))
    pool.submit(_job(0, on_epoch=hook_of(0, None)))
    pool.submit(_job(1, on_epoch=hook_of(1, 2)))
    pruned = pool.next_result()
    assert pruned is not None and pruned.job.key == 1 and pool.clock == 3.0
    outcome = pruned.outcome
    assert outcome.pruned and outcome.ok and outcome.epochs == 3
    assert len(outcome.history) == 3 and outcome.fit_seconds == 3.0
    assert (outcome.best_epoch, outcome.best_value) == (1, 0.9)
    assert [e.what for e in pool.events if e.job.key == 1] == ["start", "pruned"]
    finished = pool.next_result()
    assert finished is not None and not finished.outcome.pruned and finished.outcome.epochs == 4
    # Both workers reported epoch by epoch, in virtual time.
    assert [(key, epoch) for key, epoch, _ in reports] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2), (0, 3)
    ]  # fmt: skip


def test_a_hook_that_raises_fails_the_job_as_the_platforms_fault() -> None:
    def broken(epoch: int, row: dict[str, float]) -> bool:
        raise PlatformError("service call report failed")

    pool = FakePool(1)
    pool.submit(_job(0, on_epoch=broken))
    result = pool.next_result()
    assert result is not None and not result.outcome.ok and not result.lost
    assert result.outcome.error == PLATFORM_FAILURE


def test_a_dead_worker_is_replaced_and_its_job_comes_back_lost_when_it_died() -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.key == 0:
            raise WorkerDied(after_s=0.5, reason="oom")
        return cheap_outcome(job)

    pool = FakePool(2, behaviour)
    pool.submit(_job(1))
    pool.submit(_job(0))
    lost = pool.next_result()
    assert lost is not None and lost.lost and lost.job.key == 0 and pool.clock == 0.5
    assert lost.outcome.error == "the trial's worker process died: oom"
    assert pool.replaced == 1 and pool.idle == 1


def test_hanging_jobs_run_until_cancelled_or_killed() -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.key < 2:
            raise Hang
        return cheap_outcome(job)

    pool = FakePool(3, behaviour)
    for key in range(3):
        pool.submit(_job(key))
    assert pool.next_result().job.key == 2  # type: ignore[union-attr]
    assert pool.next_result(timeout=2.5) is None and pool.clock == 5.5
    with pytest.raises(PlatformError, match="would wait forever"):
        pool.next_result()
    assert [job.key for job in pool.kill(lambda job: job.key == 1)] == [1]
    killed = pool.next_result()
    assert killed is not None and killed.lost and killed.job.key == 1
    assert [job.key for job in pool.cancel()] == [0]
    assert pool.stopped[0].key == 0 and pool.replaced == 2 and pool.idle == 3


def test_misuse_is_an_error_not_a_hang() -> None:
    pool = FakePool(1)
    with pytest.raises(PlatformError, match="no job is running"):
        pool.next_result()
    pool.submit(_job(0))
    with pytest.raises(PlatformError, match="no idle worker"):
        pool.submit(_job(1))
    pool.shutdown()
    with pytest.raises(PlatformError, match="shut down"):
        pool.submit(_job(2))
    with pytest.raises(PlatformError, match="at least one worker"):
        FakePool(0)


class _Counter:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def keep(self, value: object) -> int:
        self.seen.append(value)
        return len(self.seen)


def test_local_services_pass_values_as_a_process_boundary_would() -> None:
    service = LocalService(_Counter)
    shared: list[int] = []
    assert service.call(_Counter.keep, shared) == 1
    shared.append(1)  # the service got a copy, as an actor would
    assert service.call(_Counter.keep, value=shared) == 2
    with pytest.raises(TypeError, match="cannot pickle"):  # nor could Ray send it
        service.call(_Counter.keep, threading.Lock())
    service.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        service.call(_Counter.keep, 1)
    assert math.isfinite(FakePool(1).service(_Counter).call(_Counter.keep, 0))


def test_the_fake_pool_needs_neither_ray_nor_torch() -> None:
    code = (
        "import sys; import medarena.testing, medarena.tuning; "
        "print(sorted(m for m in ('ray', 'torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_outcomes_come_back_as_copies_and_a_broken_behaviour_starts_nothing() -> None:
    shared = TrialOutcome(ok=True, weights=b"w", history=[{"epoch": 0.0, "val_auc": 0.5}])
    pool = FakePool(2, lambda job: shared)
    pool.submit(_job(0))
    pool.submit(_job(1))
    first, second = pool.next_result(), pool.next_result()
    assert first is not None and second is not None
    first.outcome.weights = None  # as a sweep does once it recorded a trial
    first.outcome.history.clear()
    assert second.outcome.weights == b"w" and second.outcome.history and shared.weights == b"w"

    def broken(job: TrialJob) -> TrialOutcome:
        raise KeyError("a bug in the test's behaviour")

    pool = FakePool(1, broken)
    with pytest.raises(KeyError):
        pool.submit(_job(0))
    assert (pool.idle, pool.running, pool.started) == (1, 0, [])
