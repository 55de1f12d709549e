"""The sweep: an Optuna random search, seeded and stored in SQL, run on a worker pool.

The driver asks the study for configurations with ask/tell and keeps every worker busy: as soon as
a trial finishes, the next configuration is started, then the finished trial is recorded (the
caller's ``on_trial``: store, predictions, MLflow) and only then told to the study.

Determinism: the configuration of trial *n* is drawn by a random sampler seeded with
:func:`slot_seed` ``(seed, n)``, so it depends only on the task's seed and the trial's number,
never on the order in which trials finish, and a resumed sweep draws exactly what an
uninterrupted one would. Trial *n* trains with seed ``seed + n``.

Faults: a trial whose worker process died is run again (same parameters, same seed) up to
:data:`MAX_ATTEMPTS` times. A sweep whose driver died is continued by calling :func:`run_sweep`
again with the same study and the trials already recorded (``finished``): those are neither lost
nor run again; trials the study still shows as running (in flight when the driver died) are run
again with their own parameters.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import optuna

from medarena.exceptions import PlatformError, SubmissionError, TrialError
from medarena.execution import Service, TrialJob, WorkerPool
from medarena.metrics import get_metric
from medarena.submissions import SubmissionBundle
from medarena.submissions.trial import TrialConfig, TrialOutcome
from medarena.tasks import TaskSpec
from medarena.tuning.space import to_distributions

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""How many times a trial is started when its worker process keeps dying."""

PRUNER_STARTUP_TRIALS = 2
"""The median pruner prunes nothing until this many trials have completed."""
PRUNER_WARMUP_EPOCHS = 1
"""... nor in a trial's first epochs."""

TrialState = Literal["complete", "failed", "pruned"]


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as the platform records it."""

    number: int
    params: dict[str, Any]
    state: TrialState
    outcome: TrialOutcome
    attempts: int = 1
    node_id: str = ""

    @property
    def value(self) -> float:
        return self.outcome.best_value


@dataclass
class SweepProgress:
    """Where a sweep stands; passed to the progress callback after every trial.

    ``done`` counts every finished trial, including ``restored`` ones finished by an earlier
    driver of the same sweep; ``retried`` counts re-runs after a worker died.
    """

    total: int
    done: int = 0
    failed: int = 0
    pruned: int = 0
    running: int = 0
    retried: int = 0
    restored: int = 0
    best_value: float = math.nan
    best_number: int = -1
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def eta(self) -> float:
        """Seconds until the last trial finishes, from this run's pace (NaN before any)."""
        finished_here = self.done - self.restored
        if finished_here <= 0:
            return math.nan
        return self.elapsed / finished_here * (self.total - self.done)


@dataclass(frozen=True)
class SweepResult:
    """Every trial of a sweep and the best one."""

    study_name: str
    trials: list[TrialRecord]
    best: TrialRecord
    wall_seconds: float


class SweepCancelled(Exception):  # noqa: N818  (a signal, not an error of the sweep)
    """Raised by :func:`run_sweep` when ``should_stop`` answered true; running trials stopped."""


def slot_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` of a sweep seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def trial_seed(config: TrialConfig, number: int) -> int:
    """The training seed of trial ``number``."""
    return config.seed + number


def base_config(bundle: SubmissionBundle, task: TaskSpec, *, use_gpu: bool) -> TrialConfig:
    """The trial configuration shared by all trials of a submission on a task."""
    return TrialConfig(
        submission_sha256=bundle.sha256,
        entry_file=bundle.spec.entry_point.file,
        entry_class=bundle.spec.entry_point.cls,
        params={},
        metrics=tuple(task.metrics.names),
        max_epochs=task.budget.max_epochs,
        patience=task.budget.patience,
        batch_size=task.budget.batch_size,
        seed=task.budget.seed,
        use_gpu=use_gpu,
    )


def dry_run(pool: WorkerPool, bundle: SubmissionBundle, config: TrialConfig) -> None:
    """Run the submission for one batch on a worker; raise :class:`SubmissionError` if it fails.

    Uses the middle of every search-space range so that the check does not consume a sample of
    the seeded sampler.
    """
    params: dict[str, Any] = {}
    for name, dist in to_distributions(bundle.spec.search_space).items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            params[name] = dist.choices[0]
        else:
            assert isinstance(
                dist, optuna.distributions.FloatDistribution | optuna.distributions.IntDistribution
            )
            mid = math.sqrt(dist.low * dist.high) if dist.log else (dist.low + dist.high) / 2
            params[name] = (
                round(mid) if isinstance(dist, optuna.distributions.IntDistribution) else mid
            )
    job = TrialJob(key=-1, config=replace(config, params=params), files=bundle.files, dry_run=True)
    pool.submit(job)
    result = pool.next_result()
    assert result is not None
    if not result.outcome.ok:
        raise SubmissionError(
            f"{bundle.source}: the dry run of {bundle.spec.entry_point} failed:\n"
            f"{result.outcome.error}"
        )


def _direction(task: TaskSpec) -> Literal["maximize", "minimize"]:
    return "maximize" if get_metric(task.metrics.primary).higher_is_better else "minimize"


def open_study(task: TaskSpec, *, storage_url: str, study_name: str) -> optuna.Study:
    """The sweep's study in SQL, created on first use."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(
            study_name=study_name,
            storage=storage_url,
            sampler=optuna.samplers.RandomSampler(seed=task.budget.seed),
            direction=_direction(task),
            load_if_exists=True,
        )
    except Exception as exc:  # SQLAlchemy's and Optuna's errors
        raise PlatformError(
            f"cannot open the study {study_name!r} at {storage_url}: {exc}"
        ) from exc


def run_sweep(
    pool: WorkerPool,
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
    should_stop: Callable[[], bool] | None = None,
) -> SweepResult:
    """Run (or continue) the sweep until ``n_trials`` trials have finished; return every trial.

    ``on_trial`` must record a trial durably before it returns: the study is told about the trial
    only afterwards. ``finished`` are the trials a previous driver recorded (see the module
    docstring). ``should_stop`` is polled about once a second; when it answers true the running
    trials are stopped, marked failed in the study, and :class:`SweepCancelled` is raised.

    Raises :class:`TrialError` with the first error if every trial failed.
    """
    from medarena.tuning.pruning import PruningBoard, PruningHook

    study = open_study(task, storage_url=storage_url, study_name=study_name)
    board = None
    if task.budget.pruner == "median":
        board = Service(PruningBoard, _direction(task), PRUNER_STARTUP_TRIALS, PRUNER_WARMUP_EPOCHS)
    primary = task.metrics.primary
    distributions = to_distributions(bundle.spec.search_space)
    info = get_metric(task.metrics.primary)
    progress = SweepProgress(total=n_trials)
    records: list[TrialRecord] = []
    queue: collections.deque[tuple[optuna.Trial, int]] = collections.deque()
    trials: dict[int, optuna.Trial] = {}
    recorded = dict(finished or {})

    def note_best(record: TrialRecord) -> None:
        """Track the best complete trial; ties go to the lower number, whatever the order."""
        if record.state != "complete":
            return
        value, best = record.value, progress.best_value
        if (
            progress.best_number < 0
            or info.better(value, best)
            or (value == best and record.number < progress.best_number)
        ):
            progress.best_value, progress.best_number = value, record.number

    def tell(trial: optuna.Trial | int, record: TrialRecord) -> None:
        if record.state == "complete":
            study.tell(trial, record.value)
        elif record.state == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)

    # Continue what an earlier driver left: keep finished trials, re-run orphaned ones.
    existing = study.get_trials(deepcopy=False)
    for frozen in existing:
        record = recorded.get(frozen.number)
        if board is not None and frozen.state == optuna.trial.TrialState.COMPLETE:
            assert frozen.value is not None
            board.call("add_completed", frozen.value, dict(frozen.intermediate_values))
        if frozen.state.is_finished():
            if record is None:
                log.warning("trial %d is finished in the study but not recorded", frozen.number)
                state: TrialState = (
                    "complete" if frozen.state == optuna.trial.TrialState.COMPLETE else "failed"
                )
                value = frozen.value if frozen.value is not None else math.nan
                record = TrialRecord(
                    frozen.number, frozen.params, state, TrialOutcome(ok=False, best_value=value)
                )
        elif record is not None:
            tell(frozen.number, record)  # recorded, but the driver died before telling the study
        else:
            trial = optuna.Trial(study, frozen._trial_id)
            trials[frozen.number] = trial
            queue.append((trial, 1))
            continue
        records.append(record)
        note_best(record)
    progress.done = progress.restored = len(records)
    progress.failed = sum(r.state == "failed" for r in records)
    progress.pruned = sum(r.state == "pruned" for r in records)
    asked = len(existing)

    def next_trial() -> tuple[optuna.Trial, int] | None:
        nonlocal asked
        if queue:
            return queue.popleft()
        if asked >= n_trials:
            return None
        study.sampler = optuna.samplers.RandomSampler(seed=slot_seed(task.budget.seed, asked))
        trial = study.ask(distributions)
        if trial.number != asked:
            raise PlatformError(
                f"study {study_name!r} gained trials from elsewhere while this sweep ran "
                f"(expected trial {asked}, got {trial.number}); is another driver running it?"
            )
        asked += 1
        trials[trial.number] = trial
        return trial, 1

    def top_up() -> None:
        while pool.idle:
            item = next_trial()
            if item is None:
                return
            trial, attempt = item
            job_config = replace(
                config, params=dict(trial.params), seed=trial_seed(config, trial.number)
            )
            hook = None if board is None else PruningHook(board, trial.number, attempt, primary)
            job = TrialJob(
                key=trial.number,
                config=job_config,
                files=bundle.files,
                attempt=attempt,
                on_epoch=hook,
            )
            pool.submit(job)

    top_up()
    while pool.running:
        if should_stop is not None and should_stop():
            for job in pool.cancel():
                study.tell(trials.pop(job.key), state=optuna.trial.TrialState.FAIL)
            raise SweepCancelled(f"sweep {study_name!r} was cancelled")
        result = pool.next_result(timeout=None if should_stop is None else 1.0)
        if result is None:
            continue
        trial = trials[result.job.key]
        outcome = result.outcome
        attempt = result.job.attempt
        if result.lost and attempt < max_attempts:
            log.warning(
                "trial %d lost its worker (attempt %d); running it again", trial.number, attempt
            )
            queue.appendleft((trial, attempt + 1))
            progress.retried += 1
            top_up()
            continue
        if result.lost:
            outcome = replace(
                outcome,
                error=f"platform error: the trial's worker process died in each of "
                f"{attempt} attempts; the last time: {outcome.error}",
            )
        state = "failed" if not outcome.ok else "pruned" if outcome.pruned else "complete"
        record = TrialRecord(
            trial.number, dict(trial.params), state, outcome, attempt, result.node_id
        )
        top_up()  # keep the worker busy before recording the finished trial
        records.append(record)
        note_best(record)
        progress.done += 1
        progress.failed += state == "failed"
        progress.pruned += state == "pruned"
        progress.running = pool.running
        if on_trial is not None:
            on_trial(record, progress)
        if board is not None:
            board.call("finish", trial.number, record.value if state == "complete" else None)
        told = trials.pop(trial.number)
        for row in outcome.history:  # the curve goes into the SQL study too
            value = row.get(f"val_{primary}", math.nan)
            if not math.isnan(value):
                told.report(value, int(row["epoch"]))
        tell(told, record)
    if board is not None:
        board.stop()

    records.sort(key=lambda r: r.number)
    if progress.best_number < 0:
        raise TrialError(f"every trial failed; the first error was:\n{records[0].outcome.error}")
    (best,) = (r for r in records if r.number == progress.best_number)
    return SweepResult(
        study_name=study_name, trials=records, best=best, wall_seconds=progress.elapsed
    )
