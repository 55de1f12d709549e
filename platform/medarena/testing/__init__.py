"""Test helpers that ship with MedArena, for its own tests and for anyone extending it.

- the boring submission: one linear LightningModule and its ``submission.yaml``, written to a
  folder by :func:`write_boring_submission` (variants build on it);
- :class:`FakePool`: the worker pool in this process, jobs run synchronously with scripted
  outcomes (:func:`cheap_outcome`, :func:`trial_outcome`, :class:`WorkerDied`, :class:`Hang`),
  so that the sweeps' scheduling (fair sharing, retries, cancellation, resume, pruning) is
  tested in milliseconds, without Ray, sandboxes or torch;
- :mod:`medarena.testing.pool_checks`: the contract every pool passes, the real one and the
  fake alike.

See docs/testing.md.
"""

from __future__ import annotations

from medarena.testing._fake_pool import (
    Behaviour,
    Event,
    FakePool,
    FakePredictions,
    Hang,
    WorkerDied,
    cheap_outcome,
    fake_weights,
    trial_outcome,
)
from medarena.testing._submission import (
    BORING_CLASS,
    BORING_FILE,
    BORING_MODEL,
    BORING_SEARCH_SPACE,
    write_boring_submission,
)

__all__ = [
    "BORING_CLASS",
    "BORING_FILE",
    "BORING_MODEL",
    "BORING_SEARCH_SPACE",
    "Behaviour",
    "Event",
    "FakePool",
    "FakePredictions",
    "Hang",
    "WorkerDied",
    "cheap_outcome",
    "fake_weights",
    "trial_outcome",
    "write_boring_submission",
]
