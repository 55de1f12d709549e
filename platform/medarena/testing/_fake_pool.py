"""An in-process fake of the worker pool: jobs run synchronously, their outcomes scripted.

A :class:`FakePool` runs each job when it is submitted by calling its *behaviour*, a plain
function ``TrialJob -> TrialOutcome`` (:func:`cheap_outcome` by default); no Ray, no sandbox, no
torch. Time is virtual: a job lasts its outcome's ``fit_seconds``, results come back in the
order the jobs would end (ties: the order they were submitted), and :attr:`FakePool.clock` says
when that is. A trial's epochs are replayed to its ``on_epoch`` hook (the pruning board) at
their own virtual times, interleaved with the other running jobs' epochs, as a worker would
report them; a hook that answers true prunes the trial there, as the supervisor does.

A behaviour raises :class:`WorkerDied` for a job whose worker process dies, and :class:`Hang`
for one that never ends by itself (until :meth:`FakePool.cancel` or :meth:`FakePool.kill`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, ParamSpec, TypeVar

from medarena.exceptions import PlatformError
from medarena.execution import LocalService, TrialJob, TrialResult
from medarena.execution.supervisor import PLATFORM_FAILURE, TrialOutcome
from medarena.metrics import get_metric

log = logging.getLogger(__name__)

S = TypeVar("S")
P = ParamSpec("P")

Behaviour = Callable[[TrialJob], TrialOutcome]
"""What a job computes on a fake worker (see :class:`FakePool`)."""


class WorkerDied(Exception):  # noqa: N818  (an event of the fake, not an error)
    """Raised by a behaviour: the job's worker process dies ``after_s`` virtual seconds into
    the job; the job comes back ``lost`` and the worker is replaced."""

    def __init__(self, after_s: float = 0.0, reason: str = "killed") -> None:
        super().__init__(reason)
        self.after_s = after_s
        self.reason = reason


class Hang(Exception):  # noqa: N818  (an event of the fake, not an error)
    """Raised by a behaviour: the job runs until it is cancelled or its worker is killed."""


@dataclass(frozen=True)
class FakePredictions:
    """The test predictions of a fake inference job: the weights that made them."""

    weights: bytes


def fake_weights(job: TrialJob) -> bytes:
    """The weights a fake trial keeps: they name the trial and attempt."""
    return f"weights of trial {job.key}, attempt {job.attempt}".encode()


def trial_outcome(
    job: TrialJob, curve: Sequence[float], *, seconds_per_epoch: float = 1.0
) -> TrialOutcome:
    """The outcome of a trial that trained ``len(curve)`` epochs whose validation values of the
    job's metrics were ``curve`` (every metric gets the same value): the best epoch by the
    primary metric (the first of equals), its weights (:func:`fake_weights`), the history."""
    if not curve:
        raise ValueError("a trial trains at least one epoch")
    metrics = job.config.metrics
    history = [
        {"epoch": float(epoch), "train_loss": 1.0 / (epoch + 1)}
        | {f"val_{name}": float(value) for name in metrics}
        for epoch, value in enumerate(curve)
    ]
    outcome = TrialOutcome(
        ok=True,
        epochs=len(curve),
        fit_seconds=len(curve) * seconds_per_epoch,
        history=history,
        weights=fake_weights(job),
    )
    return _with_best(outcome, metrics[0])


def _with_best(outcome: TrialOutcome, primary: str) -> TrialOutcome:
    """``outcome`` with its best epoch and value taken from its history (NaN epochs skipped)."""
    info = get_metric(primary)
    best_value, best_epoch = math.nan, -1
    for epoch, row in enumerate(outcome.history):
        value = row.get(f"val_{primary}", math.nan)
        if not math.isnan(value) and (best_epoch < 0 or info.better(value, best_value)):
            best_value, best_epoch = value, epoch
    return replace(outcome, best_value=best_value, best_epoch=best_epoch)


def cheap_outcome(job: TrialJob) -> TrialOutcome:
    """The default behaviour: every job passes. A dry run returns at once; an inference job
    returns :class:`FakePredictions` of its weights; a trial trains ``min(3, max_epochs)``
    virtual seconds, one per epoch, towards a value between 0.55 and 0.95 that depends only on
    its parameters and seed (its last epoch is its best)."""
    if job.dry_run:
        return TrialOutcome(ok=True)
    if job.weights is not None:
        return TrialOutcome(ok=True, test_predictions=FakePredictions(job.weights))
    key = json.dumps([job.config.params, job.config.seed], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).digest()
    value = 0.55 + 0.4 * int.from_bytes(digest[:8], "big") / 2**64
    n = max(1, min(3, job.config.max_epochs))
    if get_metric(job.config.metrics[0]).higher_is_better:
        curve = [value - 0.05 * (n - 1 - epoch) for epoch in range(n)]
    else:
        curve = [value + 0.05 * (n - 1 - epoch) for epoch in range(n)]
    return trial_outcome(job, curve)


@dataclass(frozen=True)
class Event:
    """What happened to a job on a fake worker, and when (virtual seconds)."""

    time: float
    what: Literal["start", "finish", "pruned", "lost", "cancelled"]
    job: TrialJob
    worker: int


@dataclass
class _Running:
    job: TrialJob
    worker: int
    serial: int
    start: float
    end: float  # math.inf: until stopped
    outcome: TrialOutcome | None  # None: the worker dies at `end`, or the job hangs
    lost: str = ""  # why the worker died
    reported: int = 0  # epochs replayed to the job's hook so far

    def next_event(self) -> tuple[float, int]:
        """When this job's next epoch report (or its end) is due, and its submission serial."""
        outcome = self.outcome
        if (
            outcome is not None
            and outcome.ok
            and self.job.on_epoch is not None
            and self.reported < len(outcome.history)
        ):
            step = outcome.fit_seconds / len(outcome.history)
            return self.start + step * (self.reported + 1), self.serial
        return self.end, self.serial


class FakePool:
    """``size`` fake workers that run jobs in this process (see the module docstring).

    Fulfils :class:`medarena.execution.Pool` and passes ``medarena.testing.pool_checks``. Virtual
    time never makes :meth:`next_result` wait: ``timeout`` matters only when every running job
    hangs (it then returns ``None`` and the clock moves on by ``timeout``; with ``timeout=None``
    it raises :class:`PlatformError` instead of waiting forever).

    For tests to look at: :attr:`started` (every job submitted, in order), :attr:`results`
    (every result returned), :attr:`stopped` (jobs cancelled), :attr:`events` (the timeline),
    :attr:`clock`, :attr:`replaced`. Not thread safe, like the real one.
    """

    def __init__(
        self, size: int = 1, behaviour: Behaviour = cheap_outcome, *, node_id: str = "local"
    ) -> None:
        if size < 1:
            raise PlatformError("a worker pool needs at least one worker")
        self.size = size
        self.behaviour = behaviour
        self.replaced = 0
        self.clock = 0.0
        self.started: list[TrialJob] = []
        self.results: list[TrialResult] = []
        self.stopped: list[TrialJob] = []
        self.events: list[Event] = []
        self._node_id = node_id
        self._idle = list(range(size))
        self._running: list[_Running] = []
        self._serial = 0
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def node_ids(self) -> list[str]:
        return [self._node_id] * self.size

    def ready(self, *, timeout: float | None = None) -> None:
        """Fake workers are ready at once."""
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise PlatformError("the worker pool was shut down")

    def service(self, cls: Callable[P, S], /, *args: P.args, **kwargs: P.kwargs) -> LocalService[S]:
        """``cls(*args, **kwargs)`` in this process (see :class:`LocalService`)."""
        return LocalService(cls, *args, **kwargs)

    def submit(self, job: TrialJob) -> None:
        """Run ``job`` now on an idle worker; its result waits for :meth:`next_result`.

        The outcome is copied, as a real worker's comes back deserialized: a behaviour may
        return one object for many jobs. An error of the behaviour itself propagates, and the
        job is not started."""
        self._check_open()
        if not self._idle:
            raise PlatformError("no idle worker: submit only while `idle` is positive")
        outcome: TrialOutcome | None = None
        end, lost = math.inf, ""
        try:
            outcome = copy.deepcopy(self.behaviour(job))
        except WorkerDied as died:
            end, lost = self.clock + died.after_s, died.reason
        except Hang:
            pass
        else:
            end = self.clock + max(outcome.fit_seconds, 0.0)
        worker = self._idle.pop()
        self.started.append(job)
        self.events.append(Event(self.clock, "start", job, worker))
        self._serial += 1
        self._running.append(_Running(job, worker, self._serial, self.clock, end, outcome, lost))

    def next_result(self, timeout: float | None = None) -> TrialResult | None:
        """The result of the job that ends first (in virtual time); see the class docstring."""
        if not self._running:
            raise PlatformError("no job is running: call next_result only while `running` > 0")
        while True:
            entry = min(self._running, key=_Running.next_event)
            when, _ = entry.next_event()
            if math.isinf(when):
                if timeout is None:
                    raise PlatformError(
                        "every running job hangs: next_result(timeout=None) would wait forever"
                    )
                self.clock += timeout
                return None
            self.clock = max(self.clock, when)
            outcome = entry.outcome
            if (
                outcome is None
                or entry.job.on_epoch is None
                or not outcome.ok
                or entry.reported >= len(outcome.history)
                or self._report(entry, outcome)
            ):
                return self._finish(entry)

    def _report(self, entry: _Running, outcome: TrialOutcome) -> bool:
        """Replay the next epoch to the job's hook; true when the job ended there."""
        assert entry.job.on_epoch is not None
        epoch = entry.reported
        entry.reported += 1
        try:
            stop = bool(entry.job.on_epoch(epoch, dict(outcome.history[epoch])))
        except Exception:  # as the supervisor: the platform's fault, this job fails
            log.exception("the epoch hook of job %d failed", entry.job.key)
            entry.outcome = TrialOutcome(ok=False, error=PLATFORM_FAILURE)
            return True
        if not stop:
            return entry.reported >= len(outcome.history)
        pruned = replace(
            outcome,
            history=outcome.history[: epoch + 1],
            epochs=epoch + 1,
            fit_seconds=outcome.fit_seconds * (epoch + 1) / len(outcome.history),
            pruned=True,
        )
        entry.outcome = _with_best(pruned, entry.job.config.metrics[0])
        return True

    def _finish(self, entry: _Running) -> TrialResult:
        self._running.remove(entry)
        if entry.outcome is None:  # the worker died
            outcome = TrialOutcome(ok=False, error=f"the trial's worker process died: {entry.lost}")
            self.replaced += 1
            what: Literal["finish", "pruned", "lost"] = "lost"
        else:
            outcome = entry.outcome
            what = "pruned" if outcome.pruned else "finish"
        self._idle.append(entry.worker)
        self.events.append(Event(self.clock, what, entry.job, entry.worker))
        result = TrialResult(
            job=entry.job,
            outcome=outcome,
            worker=entry.worker,
            node_id=self._node_id,
            lost=entry.outcome is None,
        )
        self.results.append(result)
        return result

    def kill(self, where: Callable[[TrialJob], bool] | None = None) -> list[TrialJob]:
        """The workers of the running jobs that ``where`` selects (default all) die now: their
        jobs come back ``lost`` from :meth:`next_result`. Returns those jobs."""
        killed = []
        for entry in self._running:
            if where is None or where(entry.job):
                entry.outcome, entry.lost, entry.end = None, "killed by the test", self.clock
                killed.append(entry.job)
        return killed

    def cancel(self, where: Callable[[TrialJob], bool] | None = None) -> list[TrialJob]:
        """Stop the running jobs that ``where`` selects (default all), replacing their workers;
        returns the jobs stopped, in the order they were submitted."""
        stopped = [e for e in self._running if where is None or where(e.job)]
        for entry in stopped:
            self._running.remove(entry)
            self._idle.append(entry.worker)
            self.replaced += 1
            self.events.append(Event(self.clock, "cancelled", entry.job, entry.worker))
        jobs = [entry.job for entry in stopped]
        self.stopped.extend(jobs)
        return jobs

    def shutdown(self) -> None:
        """Drop the running jobs; the pool takes no more."""
        self._running.clear()
        self._closed = True
