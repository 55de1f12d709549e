"""The values an arena passes around: its configuration, a run in progress, a result."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medarena.exceptions import UserError
from medarena.tasks import TaskData, TaskSpec

if TYPE_CHECKING:
    from medarena.execution import WorkerPool
    from medarena.execution.supervisor import TrialConfig
    from medarena.scoring.score import MetricValue
    from medarena.submissions import SubmissionBundle
    from medarena.tracking import Tracker
    from medarena.tuning import SweepProgress, TrialRecord


log = logging.getLogger(__name__)

PLATFORM_FAILED = "the platform failed while running this submission"
CANCELLED = "cancelled on request; the trials that had finished are kept"
REQUEUED = "its worker was stopped; back in the queue, the next worker continues it"
ORPHANED = "its driver stopped answering (killed, or its machine lost); back in the queue"


def error_text(exc: BaseException) -> str:
    """What the store and the pages say of a failure: a user error's own text; of the
    platform's own errors only their kind (their text may name hosts, paths or database URLs:
    it is the operator's, see :func:`log_failure`)."""
    if isinstance(exc, UserError):
        return str(exc)
    return f"{PLATFORM_FAILED} ({type(exc).__name__}); the operators have the details in their log"


def log_failure(submission_id: int, exc: BaseException) -> None:
    """Log a platform error in full where it ends without being raised further (the queue
    worker; a command that raises it logs it itself)."""
    if not isinstance(exc, UserError):
        log.error("submission %d failed on a platform error", submission_id, exc_info=exc)


def operator_text(exc: BaseException) -> str:
    """A failure in full, for the operator's console and MLflow."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def study_name(spec: TaskSpec, submission_id: int) -> str:
    """The Optuna study of a submission (in the study database, never the leaderboard's)."""
    return f"{spec.name}-v{spec.version}/submission-{submission_id}"


StageCallback = Callable[[str], None]
TrialCallback = Callable[["TrialRecord", "SweepProgress"], None]
QueueTrialCallback = Callable[[int, "TrialRecord", "SweepProgress"], None]
"""Called by :meth:`Arena.work` after each recorded trial, with the submission's id."""
EventCallback = Callable[[int, str, str], None]
"""Called by :meth:`Arena.work` when a submission changes state: id, new status, detail."""


@dataclass(frozen=True)
class ArenaConfig:
    """Where the platform keeps its state; built from :class:`medarena.settings.Settings`."""

    catalogue_dir: Path
    cache_dir: Path
    db_url: str
    study_url: str
    tracking_uri: str
    ray_address: str | None = None
    num_cpus: int | None = None
    worker_start_timeout_s: float = 300.0
    artifacts_dir: Path | None = None
    """Kept per submission: its code and the best trial's test predictions (so that an
    interrupted sweep can be resumed and scored); default: ``artifacts`` next to the cache."""
    heartbeat_s: float = 10.0
    """How often this process stamps the submissions it drives (see ``arena._heartbeat``)."""
    stale_after_s: float = 60.0
    """A queue worker takes over a running submission whose driver was silent this long."""
    allow_unsandboxed: bool = False
    """Run submitted code without a sandbox where none can run (trusted code only)."""

    @property
    def artifacts(self) -> Path:
        return self.artifacts_dir or self.cache_dir.parent / "artifacts"


@dataclass(frozen=True)
class SubmissionResult:
    """What a finished submission produced."""

    submission_id: int
    task: str
    name: str
    team: str
    split_hash: str
    scores: dict[str, MetricValue]
    conventions: dict[str, Any]
    best_params: dict[str, Any]
    trials: list[TrialRecord]
    sweep_seconds: float
    workers: int
    mlflow_run_id: str

    @property
    def fit_seconds(self) -> float:
        return sum(t.outcome.fit_seconds for t in self.trials)

    @property
    def overhead_per_trial(self) -> float:
        """Worker-seconds per trial not spent in ``Trainer.fit``: scheduling, data, tracking."""
        return (self.sweep_seconds * self.workers - self.fit_seconds) / len(self.trials)


@dataclass(frozen=True)
class Run:
    """What the sweep-and-score half of a submission needs (shared by submit and resume)."""

    submission_id: int
    spec: TaskSpec
    runtime: TaskRuntime
    pool: WorkerPool
    bundle: SubmissionBundle
    config: TrialConfig
    n_trials: int
    team: str
    tags: dict[str, str]
    tracker: Tracker
    parent: str


@dataclass
class TaskRuntime:
    data: TaskData
    task_id: int
    pool: WorkerPool | None = None
