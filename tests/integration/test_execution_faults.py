"""Fault tolerance of the execution layer with real Ray workers, end to end.

A worker process killed in the middle of a trial is replaced, the trial runs again (counted), and
the sweep completes its budget. Submitted code cannot kill its worker (it runs in a sandbox with
its own PID namespace), so the test kills workers from outside, while they run a job.

The scheduling logic (a retry keeps its configuration, attempts are bounded, the others go on) is
tested on a fake pool in tests/unit/tuning/test_retries.py; that the real pool reports a dead
worker's job as lost and replaces the worker, in tests/integration/test_pool_conformance.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from workers import busy_trial_workers

from medarena.arena import Arena
from medarena.testing import write_boring_submission

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SLOW = """
    import time
    from boring import Boring

    class Slow(Boring):
        def training_step(self, batch, batch_idx):
            if not self.trainer.fast_dev_run:
                time.sleep(0.05)
            return super().training_step(batch, batch_idx)
"""


@contextlib.contextmanager
def killing_workers(*, times: int, after_s: float) -> Iterator[list[int]]:
    """Kill a busy trial worker ``after_s`` seconds into its job, ``times`` times; yields the
    pids killed."""
    killed: list[int] = []
    stop = threading.Event()

    def kill() -> None:
        seen: dict[int, float] = {}
        while not stop.is_set() and len(killed) < times:
            now = time.monotonic()
            for pid in busy_trial_workers():
                if pid not in killed and now - seen.setdefault(pid, now) >= after_s:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    break
            time.sleep(0.05)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()


def test_a_worker_killed_mid_trial_is_replaced_and_the_trial_rerun(
    arena: Arena, tmp_path: Path
) -> None:
    folder = write_boring_submission(
        tmp_path / "slow", name="slow", variant=SLOW, entry_class="Slow"
    )
    with killing_workers(times=1, after_s=3.0) as killed:
        result = arena.submit(folder, "tiny-ct", trials=3)

    assert len(killed) == 1  # a worker really died
    assert [t.state for t in result.trials] == ["complete"] * 3
    assert sorted(t.attempts for t in result.trials) == [1, 1, 2]
    rows = arena.store.trials(result.submission_id)
    assert sorted(r.attempts for r in rows) == [1, 1, 2]
    assert all(r.state == "complete" for r in rows)
    retried = next(t for t in result.trials if t.attempts == 2)
    assert retried.outcome.epochs >= 1
    progress = arena.store.progress(result.submission_id)
    assert progress["status"] == "scored" and progress["done"] == 3 and progress["retried"] == 1
    assert result.scores["auc"].value > 0.5
