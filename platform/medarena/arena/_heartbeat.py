"""The driver's heartbeat: how a worker tells a dead driver from a busy one.

A driver (``medarena submit``, ``resume``, a queue worker) stamps the submissions it runs every
``ArenaConfig.heartbeat_s`` from a daemon thread, whatever its main thread is doing (starting
workers, scoring a large test set). A queue worker hands back to the queue the running
submissions whose stamp is older than ``ArenaConfig.stale_after_s`` (``Store.requeue_stale``):
their driver was killed without the chance to hand them back, and the next worker continues
them from their study.
"""

from __future__ import annotations

import logging
import threading

from medarena.store import Store

log = logging.getLogger(__name__)


class Heartbeat:
    """Stamps the submissions this process drives, every ``interval_s``, until closed."""

    def __init__(self, store: Store, *, interval_s: float) -> None:
        self._store, self._interval_s = store, interval_s
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, submission_id: int) -> None:
        """Start stamping ``submission_id`` (now, and every interval from here on)."""
        with self._lock:
            self._ids.add(submission_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
                self._thread.start()
        self._store.beat([submission_id])

    def discard(self, submission_id: int) -> None:
        """Stop stamping ``submission_id`` (it finished, or was handed back)."""
        with self._lock:
            self._ids.discard(submission_id)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                ids = sorted(self._ids)
            try:
                self._store.beat(ids)
            except Exception:  # a busy database: the next beat comes soon, far before stale
                log.warning("could not stamp the heartbeat of submissions %s", ids, exc_info=True)
