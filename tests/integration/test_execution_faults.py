"""Fault tolerance of the execution layer with real Ray workers.

A worker process killed in the middle of a trial is replaced, the trial runs again (counted), and
the sweep completes its budget; a trial whose worker keeps dying fails after bounded attempts.
Submitted code cannot kill its worker (it runs in a sandbox with its own PID namespace), so the
tests kill workers from outside, while they run a job.
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

from medarena.arena import Arena
from medarena.exceptions import TrialError

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SLOW = """\
import time
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
import lightning.pytorch as pl


class Slow(pl.LightningModule):
    def __init__(self, num_classes, input_shape, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(int(np.prod(input_shape)), num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1))

    def training_step(self, batch, batch_idx):
        if not self.trainer.fast_dev_run:
            time.sleep(0.05)
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
"""

YAML = "name: slow\nentry_point: model.py:Slow\n" + (
    "search_space:\n  lr: {type: float, low: 0.001, high: 0.1, log: true}\n"
)


def _running_trial_workers() -> list[int]:
    """Pids of Ray trial workers busy with a job (Ray titles them after the running method)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes().startswith(b"ray::_TrialWorker.run"):
                    pids.append(int(entry.name))
    return pids


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
            for pid in _running_trial_workers():
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
    arena: Arena,
    make_submission,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    folder = make_submission("slow", YAML, SLOW)
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


def test_a_trial_whose_worker_keeps_dying_fails_after_bounded_attempts(
    ray_cluster: None,
    catalogue: Path,
    make_submission,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from medarena.execution import WorkerPool
    from medarena.submissions import load_submission
    from medarena.tasks import TaskCatalogue, load_task_data
    from medarena.tuning import run_sweep
    from medarena.tuning.sweep import base_config

    folder = make_submission("slow", YAML, SLOW)
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    pool = WorkerPool(load_task_data(spec).worker_data(), size=1)
    bundle = load_submission(folder)
    try:
        with (
            killing_workers(times=2, after_s=2.0) as killed,
            pytest.raises(TrialError, match=r"(?s)worker process died in each of 2 attempts"),
        ):
            run_sweep(
                pool,
                bundle,
                spec,
                storage_url=f"sqlite:///{tmp_path / 'studies.db'}",
                study_name="always-dies",
                n_trials=1,
                config=base_config(bundle, spec, use_gpu=False),
                max_attempts=2,
            )
        assert len(killed) == 2 and pool.replaced == 2 and pool.idle == 1
    finally:
        pool.shutdown()
