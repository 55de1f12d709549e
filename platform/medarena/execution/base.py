"""What a pool of trial workers is, without Ray: the jobs it runs, what it returns, its contract.

:class:`Pool` is the interface that the sweeps' drivers (:mod:`medarena.tuning`) use;
:class:`~medarena.execution.WorkerPool` is the one on Ray, and ``medarena.testing.FakePool``
runs jobs in this process for tests. Both pass the checks in ``medarena.testing.pool_checks``.
A pool also starts the small stateful *services* its jobs call back into (the pruning board):
:class:`ServiceHandle` is what a service looks like to its callers, :class:`LocalService` one
kept in this process. Nothing here imports Ray or torch.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, Generic, ParamSpec, Protocol, TypeVar

from medarena.execution.supervisor import EpochHook, TrialConfig, TrialOutcome

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class TrialJob:
    """One unit of work: a configuration of a submission, with the submission's files.

    ``attempt`` counts from 1; a job whose worker died is submitted again with the next number.
    ``owner`` tells apart the jobs of several sweeps sharing one pool (a submission's id). With
    ``weights`` the job is the submission's inference: those weights predict the test inputs.
    """

    key: int
    config: TrialConfig
    files: dict[str, bytes]
    dry_run: bool = False
    weights: bytes | None = None
    attempt: int = 1
    on_epoch: EpochHook | None = None
    owner: int = 0


@dataclass(frozen=True)
class TrialResult:
    """A finished job: its outcome, or for a dry run the error text ('' when it passed).

    ``lost`` is true when the worker's process died during the job; the outcome then carries the
    platform's description of the failure, and the worker has already been replaced.
    """

    job: TrialJob
    outcome: TrialOutcome
    worker: int
    node_id: str = ""
    lost: bool = False


class ServiceHandle(Protocol[S_co]):
    """A stateful object of some class ``S`` that a pool keeps for its jobs to call into.

    Methods are named by the class's own function, so that type checkers see the call::

        board = pool.service(PruningBoard, "maximize", 2, 1)
        board.call(PruningBoard.finish, number, value)

    Arguments and results cross a process boundary (they are pickled); a method of another
    class raises :class:`TypeError`.
    """

    def call(
        self, method: Callable[Concatenate[S_co, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    def stop(self) -> None: ...


class ServiceFactory(Protocol):
    """What starts a service: ``factory(cls, *args, **kwargs)`` builds ``cls(*args, **kwargs)``
    where the pool's jobs can reach it (:meth:`Pool.service` is one)."""

    def __call__(
        self, cls: Callable[P, S], /, *args: P.args, **kwargs: P.kwargs
    ) -> ServiceHandle[S]: ...


class LocalService(Generic[S]):
    """A service kept in this process (see :class:`ServiceHandle`).

    Arguments and results go through :mod:`pickle` as they would to and from an actor, so what
    works here works on Ray. Like Ray, it only ever carries the driver's own objects (the
    pruning board's scores come from the supervisor's trusted scoring), never anything a
    submission produced. Not thread safe.
    """

    def __init__(self, cls: Callable[P, S], /, *args: P.args, **kwargs: P.kwargs) -> None:
        self._cls = cls
        self._obj: S | None = cls(*args, **kwargs)

    def call(self, method: Callable[Concatenate[S, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``method`` (a function of the service's class) on the object; return its result."""
        if getattr(self._cls, method.__name__, None) is not method:
            raise TypeError(f"{method.__qualname__} is not a method of {self._cls!r}")
        if self._obj is None:
            raise RuntimeError(f"the service of {self._cls!r} was stopped")
        args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
        result: R = pickle.loads(pickle.dumps(method(self._obj, *args, **kwargs)))
        return result

    def stop(self) -> None:
        self._obj = None


class Pool(Protocol):
    """A fixed number of trial workers, each running one :class:`TrialJob` at a time.

    Contract (``medarena.testing.pool_checks`` checks it on every implementation):

    - :attr:`idle` + :attr:`running` is :attr:`size` whenever no call is in progress;
    - :meth:`submit` starts a job on an idle worker (call it only while :attr:`idle` > 0);
    - :meth:`next_result` returns each submitted job exactly once, as the same ``TrialJob``
      (call it only while :attr:`running` > 0), frees its worker, and returns ``None`` if no job
      finished within ``timeout`` seconds (``None``: wait as long as it takes);
    - a job whose worker died comes back with ``lost=True`` and ``ok=False``; the worker has
      been replaced (:attr:`replaced` counts replacements) and is idle again;
    - :meth:`cancel` stops the running jobs that ``where`` selects (all by default) at once,
      returns them in the order they were submitted, frees their workers (replaced) and never
      returns their results;
    - :meth:`service` starts an object the pool's jobs can call (see :class:`ServiceHandle`).

    Thread safety: none. One driver thread submits jobs and collects results.
    """

    size: int
    replaced: int

    @property
    def idle(self) -> int: ...

    @property
    def running(self) -> int: ...

    def ready(self, *, timeout: float | None = None) -> None: ...

    def submit(self, job: TrialJob) -> None: ...

    def next_result(self, timeout: float | None = None) -> TrialResult | None: ...

    def cancel(self, where: Callable[[TrialJob], bool] | None = None) -> list[TrialJob]: ...

    def service(
        self, cls: Callable[P, S], /, *args: P.args, **kwargs: P.kwargs
    ) -> ServiceHandle[S]: ...

    def shutdown(self) -> None: ...
