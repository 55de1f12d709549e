"""The one loader of leaderboards, for the command line and the web app alike: a task's scores
from the store, ranked by :func:`medarena.scoring.ranking.leaderboard`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medarena.metrics import MetricInfo, get_metric
from medarena.scoring.ranking import leaderboard, leaderboard_records

if TYPE_CHECKING:
    import pandas as pd

    from medarena.store import Store
    from medarena.tasks import TaskSpec


@dataclass(frozen=True, slots=True)
class Board:
    """A task's spec and ranked leaderboard (its current version)."""

    spec: TaskSpec
    metrics: list[MetricInfo]
    """The task's metrics, its primary one first."""
    frame: pd.DataFrame
    """One row per entry, as :func:`~medarena.scoring.ranking.leaderboard` ranks them."""
    split_hash: str | None
    """The split its scores were computed on; ``None`` before anything was submitted."""

    @property
    def primary(self) -> MetricInfo:
        return self.metrics[0]

    def records(self) -> list[dict[str, Any]]:
        """The JSON rows (``medarena leaderboard --format json``): see
        :func:`~medarena.scoring.ranking.leaderboard_records`."""
        return leaderboard_records(self.frame, [m.name for m in self.metrics])

    def best(self) -> float | None:
        """The leader's value of the primary metric; ``None`` without a ranked entry."""
        records = self.records()
        return records[0][self.primary.name] if records else None


def load_board(store: Store, spec: TaskSpec) -> Board:
    """The leaderboard of ``spec``'s version: the latest scored run of every entry, ranked by
    the primary metric, on the task's current split."""
    metrics = [get_metric(name) for name in spec.metrics.names]
    task_id = store.task_id(spec.name, spec.version)
    task = store.task(task_id) if task_id is not None else None
    frame = store.scores_frame(task_id) if task_id is not None else None
    return Board(
        spec=spec,
        metrics=metrics,
        frame=leaderboard(frame, metrics=metrics),
        split_hash=task.split_hash if task is not None else None,
    )
