"""The sweep: an Optuna random search, seeded and stored in SQL, run on a worker pool.

The driver asks the study for configurations with ask/tell and keeps every worker busy: as soon as
a trial finishes, the next configuration is started, then the finished trial is recorded (the
caller's ``on_trial``: store, predictions, MLflow) and only then told to the study.

Determinism: the configuration of trial *n* is drawn by a random sampler seeded with
:func:`slot_seed` ``(seed, n)``, so it depends only on the task's seed and the trial's number,
never on the order in which trials finish, and a resumed sweep draws exactly what an
uninterrupted one would. Trial *n* trains with seed ``seed + n``.

Faults: a trial whose worker process died is run again (same parameters, same seed) up to
:data:`MAX_ATTEMPTS` times. A sweep whose driver died is continued by calling
:func:`~medarena.tuning.run_sweep` again with the same study and the trials already recorded
(``finished``): those are neither lost nor run again; trials the study still shows as running (in
flight when the driver died) are run again with their own number, parameters and seed, and told
to the study by number. Optuna's public API hands a trial (``optuna.Trial``, to report epochs to)
only to the process that asked it, so the study keeps no learning curve of such a trial (the
store and MLflow do) and, if it is pruned, no last value.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

import optuna

from medarena.exceptions import PlatformError, TrialError
from medarena.execution import ServiceFactory, TrialJob, TrialResult
from medarena.execution.supervisor import TrialConfig, TrialOutcome
from medarena.metrics import get_metric
from medarena.store.values import TrialState
from medarena.submissions import SubmissionBundle
from medarena.tasks import TaskSpec
from medarena.tuning.jobs import MAX_ATTEMPTS, DryRun, RetriedJob, trial_seed
from medarena.tuning.pruning import PruningBoard, PruningHook, start_board
from medarena.tuning.records import SweepProgress, SweepResult, TrialRecord
from medarena.tuning.space import to_distributions
from medarena.tuning.study import open_study, slot_seed

log = logging.getLogger(__name__)


class _Open(NamedTuple):
    """A trial started and not yet told to the study."""

    params: dict[str, Any]
    trial: optuna.Trial | None
    """The study's handle when this driver asked the trial; ``None`` for a trial an earlier
    driver asked (told by number, see the module docstring)."""


class Sweep:
    """One submission's sweep as a state object that a driver steps: it hands out jobs
    (:meth:`want_job`) and takes their results (:meth:`accept`, then :meth:`record`).

    :func:`~medarena.tuning.run_sweep` drives one sweep on a pool;
    :class:`~medarena.tuning.FairShare` drives several on one pool. Creating a sweep opens (or
    continues) its study: trials ``finished`` by an earlier driver are kept, trials the study
    shows as running are run again (see the module docstring). With ``dry_run`` the first job is
    the submission's dry run, and no trial starts before it passed; a failed dry run raises
    :class:`SubmissionError` from :meth:`accept`.

    ``on_trial`` must record a trial durably before it returns: the study is told about the
    trial only afterwards. ``services`` starts the pruning board where the jobs can reach it:
    the pool's :meth:`~medarena.execution.Pool.service` (default: a Ray actor). Not thread safe.
    """

    def __init__(
        self,
        bundle: SubmissionBundle,
        task: TaskSpec,
        *,
        storage_url: str,
        study_name: str,
        n_trials: int,
        config: TrialConfig,
        on_trial: Callable[[TrialRecord, SweepProgress], None] | None = None,
        finished: dict[int, TrialRecord] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        owner: int = 0,
        team: str = "",
        dry_run: bool = False,
        services: ServiceFactory | None = None,
    ) -> None:
        self.bundle, self.task, self.config = bundle, task, config
        self.study_name, self.n_trials, self.max_attempts = study_name, n_trials, max_attempts
        self.owner, self.team = owner, team
        self.on_trial = on_trial
        self.study = open_study(task, storage_url=storage_url, study_name=study_name)
        self._board = start_board(task, services)
        self._primary = task.metrics.primary
        self._distributions = to_distributions(bundle.spec.search_space)
        self._info = get_metric(task.metrics.primary)
        self.progress = SweepProgress(total=n_trials)
        self.records: list[TrialRecord] = []
        self.running = 0
        """Jobs of this sweep on workers now."""
        self.error: Exception | None = None
        """Why the sweep ended early, set by its driver: a failed dry run, a store error, ..."""
        self._queue: collections.deque[tuple[int, int]] = collections.deque()  # number, attempt
        self._open: dict[int, _Open] = {}
        self._dry_run = DryRun(bundle, config, owner=owner, max_attempts=max_attempts)
        if not dry_run:
            self._dry_run.skip()
        self._inference = RetriedJob(self._inference_job, max_attempts=max_attempts)
        self._unrecorded = 0  # trials accepted, not yet recorded: the best may still change
        self._best_weights: bytes | None = None
        self.test_predictions: Any = None
        """The best trial's predictions of the test inputs, once its inference job returned."""
        self._asked = self._restore(dict(finished or {}))

    def _restore(self, recorded: dict[int, TrialRecord]) -> int:
        """Continue what an earlier driver left: keep finished trials, re-run orphaned ones."""
        existing = self.study.get_trials(deepcopy=False)
        for frozen in existing:
            record = recorded.get(frozen.number)
            if self._board is not None and frozen.state == optuna.trial.TrialState.COMPLETE:
                assert frozen.value is not None
                curve = dict(frozen.intermediate_values)
                self._board.call(PruningBoard.add_completed, frozen.value, curve)
            if frozen.state.is_finished():
                if record is None:
                    log.warning("trial %d is finished in the study but not recorded", frozen.number)
                    state = (
                        TrialState.COMPLETE
                        if frozen.state == optuna.trial.TrialState.COMPLETE
                        else TrialState.FAILED
                    )
                    value = frozen.value if frozen.value is not None else math.nan
                    record = TrialRecord(
                        frozen.number,
                        frozen.params,
                        state,
                        TrialOutcome(ok=False, best_value=value),
                    )
            elif record is not None:
                self._tell(frozen.number, record)  # recorded, but the driver died before telling
            else:  # running when the driver died: run it again, told by number
                self._open[frozen.number] = _Open(dict(frozen.params), None)
                self._queue.append((frozen.number, 1))
                continue
            self.records.append(record)
            self._note_best(record)
        progress = self.progress
        progress.done = progress.restored = len(self.records)
        progress.failed = sum(r.state is TrialState.FAILED for r in self.records)
        progress.pruned = sum(r.state is TrialState.PRUNED for r in self.records)
        return len(existing)

    @property
    def finished(self) -> bool:
        """Nothing running and nothing left to run: :meth:`result` may be called."""
        return self._trials_done and self._inference.done

    @property
    def _trials_done(self) -> bool:
        return (
            self.running == 0
            and self._unrecorded == 0
            and self._dry_run.done
            and not self._queue
            and self._asked >= self.n_trials
        )

    def _note_best(self, record: TrialRecord) -> None:
        """Track the best complete trial and its weights; ties go to the lower number, whatever
        the order."""
        if record.state is not TrialState.COMPLETE:
            return
        value, best = record.value, self.progress.best_value
        if (
            self.progress.best_number < 0
            or self._info.better(value, best)
            or (value == best and record.number < self.progress.best_number)
        ):
            self.progress.best_value, self.progress.best_number = value, record.number
            self._best_weights = record.outcome.weights

    def _tell(self, trial: optuna.Trial | int, record: TrialRecord) -> None:
        if record.state is TrialState.COMPLETE:
            self.study.tell(trial, record.value)
        elif record.state is TrialState.PRUNED:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def _next_trial(self) -> tuple[int, int] | None:
        """The number and attempt of the next trial to run, asking the study for a new one."""
        if self._queue:
            return self._queue.popleft()
        if self._asked >= self.n_trials:
            return None
        seed = slot_seed(self.task.budget.seed, self._asked)
        self.study.sampler = optuna.samplers.RandomSampler(seed=seed)
        trial = self.study.ask(self._distributions)
        if trial.number != self._asked:
            raise PlatformError(
                f"study {self.study_name!r} gained trials from elsewhere while this sweep ran "
                f"(expected trial {self._asked}, got {trial.number}); is another driver running it?"
            )
        self._asked += 1
        self._open[trial.number] = _Open(dict(trial.params), trial)
        return trial.number, 1

    def want_job(self) -> TrialJob | None:
        """The next job to start on an idle worker, or ``None`` if this sweep has none now."""
        if not self._dry_run.done:
            job = self._dry_run.start()
        elif (item := self._next_trial()) is not None:
            job = self._trial_job(*item)
        elif self._trials_done and self._best_known():
            job = self._inference.start()
        else:
            job = None
        self.running += job is not None
        return job

    def _trial_job(self, number: int, attempt: int) -> TrialJob:
        config = replace(
            self.config,
            params=dict(self._open[number].params),
            seed=trial_seed(self.config, number),
        )
        board = self._board
        hook = None if board is None else PruningHook(board, number, attempt, self._primary)
        return TrialJob(
            key=number,
            config=config,
            files=self.bundle.files,
            attempt=attempt,
            on_epoch=hook,
            owner=self.owner,
        )

    def _best_known(self) -> bool:
        """Whether a trial completed, so that there is something to predict the test inputs
        with; if every trial failed, the inference is done without running (:meth:`result` says
        why)."""
        if self.progress.best_number < 0:
            self._inference.skip()
            return False
        return True

    def _inference_job(self, attempt: int) -> TrialJob:
        """Once every trial has finished: the best weights predict the test inputs."""
        best = self.progress.best_number
        if self._best_weights is None:
            raise PlatformError(
                f"the weights of the best trial ({best}) of {self.study_name!r} were not kept, "
                "so its test predictions cannot be made"
            )
        params = next(r.params for r in self.records if r.number == best)
        return TrialJob(
            key=best,
            config=replace(self.config, params=dict(params), seed=trial_seed(self.config, best)),
            files=self.bundle.files,
            weights=self._best_weights,
            attempt=attempt,
            owner=self.owner,
        )

    def accept(self, result: TrialResult) -> TrialRecord | None:
        """Take a finished job of this sweep. Returns the trial to :meth:`record` (the driver
        first gives the freed worker new work), or ``None`` when there is nothing to record: the
        dry run passed, or the trial lost its worker and will run again."""
        self.running -= 1
        if result.job.dry_run:
            if not self._dry_run.finish(result):
                log.warning("the dry run of %s lost its worker; running it again", self.study_name)
            return None
        if result.job.weights is not None:
            if self._inference.finish(result):
                if not result.outcome.ok:
                    raise TrialError(result.outcome.error)
                self.test_predictions = result.outcome.test_predictions
            return None
        number = result.job.key
        outcome = result.outcome
        attempt = result.job.attempt
        if result.lost and attempt < self.max_attempts:
            log.warning("trial %d lost its worker (attempt %d); running it again", number, attempt)
            self._queue.appendleft((number, attempt + 1))
            self.progress.retried += 1
            return None
        if result.lost:
            outcome = replace(
                outcome,
                error=f"platform error: the trial's worker process died in each of "
                f"{attempt} attempts; the last time: {outcome.error}",
            )
        state = (
            TrialState.FAILED
            if not outcome.ok
            else TrialState.PRUNED
            if outcome.pruned
            else TrialState.COMPLETE
        )
        self._unrecorded += 1
        params = dict(self._open[number].params)
        return TrialRecord(number, params, state, outcome, attempt, result.node_id)

    def record(self, record: TrialRecord) -> None:
        """Record a finished trial (``on_trial``), then tell the study and the pruning board."""
        self._unrecorded -= 1
        self.records.append(record)
        self._note_best(record)
        progress = self.progress
        progress.done += 1
        progress.failed += record.state is TrialState.FAILED
        progress.pruned += record.state is TrialState.PRUNED
        progress.running = self.running
        if self.on_trial is not None:
            self.on_trial(record, progress)  # keeps the weights of a new best durably
        record.outcome.weights = None  # the best's are held in _best_weights
        if self._board is not None:
            value = record.value if record.state is TrialState.COMPLETE else None
            self._board.call(PruningBoard.finish, record.number, value)
        told = self._open.pop(record.number).trial
        if told is not None:  # the curve goes into the SQL study too (see the module docstring)
            for row in record.outcome.history:
                value = row.get(f"val_{self._primary}", math.nan)
                if not math.isnan(value):
                    told.report(value, int(row["epoch"]))
        self._tell(record.number if told is None else told, record)

    def stopped(self, jobs: list[TrialJob]) -> None:
        """These jobs of the sweep were stopped (cancelled): their trials fail in the study."""
        for job in jobs:
            self.running -= 1
            if job.dry_run:
                self._dry_run.stopped()
            elif job.weights is not None:
                self._inference.stopped()
            else:
                told = self._open.pop(job.key).trial
                self.study.tell(
                    job.key if told is None else told, state=optuna.trial.TrialState.FAIL
                )

    def close(self) -> None:
        """Stop the pruning board (idempotent)."""
        if self._board is not None:
            self._board.stop()
            self._board = None

    def result(self) -> SweepResult:
        """Every trial and the best one; raises :class:`TrialError` if every trial failed."""
        self.close()
        records = sorted(self.records, key=lambda r: r.number)
        best_number = self.progress.best_number
        if best_number < 0:
            raise TrialError(
                f"every trial failed; the first error was:\n{records[0].outcome.error}"
            )
        (best,) = (r for r in records if r.number == best_number)
        if self.test_predictions is None:
            raise PlatformError(f"sweep {self.study_name!r} has no test predictions yet")
        return SweepResult(
            study_name=self.study_name,
            trials=records,
            best=best,
            wall_seconds=self.progress.elapsed,
            test_predictions=self.test_predictions,
        )
