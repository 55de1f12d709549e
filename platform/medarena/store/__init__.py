"""The leaderboard database: SQLAlchemy models, migrations, and the queries the platform needs.

:class:`Store` hands out the frozen values of :mod:`medarena.store.values` (never SQLAlchemy
rows); a submission's status moves only as :data:`TRANSITIONS` allows.
"""

from __future__ import annotations

from medarena.store._reads import Progress, QueueEntry
from medarena.store.store import Store
from medarena.store.values import (
    ACTIVE,
    FINISHED,
    TRANSITIONS,
    Status,
    StoredScore,
    StoredSubmission,
    StoredTask,
    StoredTrial,
    TransitionError,
    TrialState,
    best_trial,
)

__all__ = [
    "ACTIVE",
    "FINISHED",
    "TRANSITIONS",
    "Progress",
    "QueueEntry",
    "Status",
    "Store",
    "StoredScore",
    "StoredSubmission",
    "StoredTask",
    "StoredTrial",
    "TransitionError",
    "TrialState",
    "best_trial",
]
